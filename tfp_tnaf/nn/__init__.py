"""Conditioners: networks that give each dimension's pseudo-parameters autoregressively."""

from tfp_tnaf.nn.block_network import BlockAutoregressiveNetwork, BlockConditioner
from tfp_tnaf.nn.conditioner import Conditioner
from tfp_tnaf.nn.hypernetwork import LowRankHypernetwork, MonotoneHypernetwork
from tfp_tnaf.nn.made import MadeConditioner
from tfp_tnaf.nn.transformer import AutoregressiveTransformer
from tfp_tnaf.nn.transformer_conditioner import TransformerConditioner

__all__ = ["AutoregressiveTransformer", "BlockAutoregressiveNetwork", "BlockConditioner",
           "Conditioner", "LowRankHypernetwork", "MadeConditioner", "MonotoneHypernetwork",
           "TransformerConditioner"]
