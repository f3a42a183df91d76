"""TransformerAutoregressive (T-NAF): a causal transformer conditioner driving monotone maps."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfp_tnaf import checks
from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive
from tfp_tnaf.nn.transformer_conditioner import TransformerConditioner
from tfp_tnaf.roots import RootSolver
from tfp_tnaf.transforms import LINEAR_SLOPE, MonotoneTransform, make_transform

__all__ = ["PAPER", "TransformerAutoregressive"]

# The official T-NAF configuration (Patacchiola et al. 2024, the authors' code):
# `TransformerAutoregressive.paper(D)` builds it.
PAPER = dict(num_layers=4, num_heads=4, embedding_units=16, mlp_units=64, head_units=256,
             psi_units=128, token_activation="tanh", mlp_activation="gelu",
             hypernetwork="mlp", hypernetwork_units=208, transform="network",
             transform_units=128, dropout=0.0)


class TransformerAutoregressive(MonotoneAutoregressive):
    """Transformer neural autoregressive flow (T-NAF).

    Each dimension is one token of a causal transformer (see
    `AutoregressiveTransformer`), which emits a vector `psi_i(y_<i [, c])`; a
    hypernetwork turns `psi_i` into the pseudo-parameters of dimension i's
    monotone transform (by default `DeepSigmoidalTransform`, NAF's sigmoidal
    flow of 32 sigmoids plus a linear term, a bijection of R onto R; the
    paper's is `MonotoneNetworkTransform`, 1 -> H -> H -> 1 with positive
    weights and a positive linear skip):

      x_i = f(y_i; W(psi_i)),   log |det dx/dy| = sum_i log f'(y_i; W(psi_i)).

    Two hypernetworks:

    - `"low-rank"` (default): `W(psi_i) = W0_i + psi_i U`, a base per dimension
      (its marginal transform, learnt directly) plus a rank-`psi_units`
      modulation by the transformer (`LowRankHypernetwork`). One small matmul
      per element.
    - `"mlp"` (the paper's): four two-layer MLPs shared by all dimensions
      (`MonotoneHypernetwork`), run once per element; most of the paper
      configuration's compute.

    The default sizes come from an ablation at equal wall-clock (the
    `benchmarks.equal_time` module, README "Which flow should I use"): two-head
    blocks of width 32, psi of 32, the low-rank hypernetwork, a DSF of 32
    sigmoids, trained at learning rate 1e-2 with the global gradient norm
    clipped to 0.1 (`FLOWS["tnaf"].recipe`). A layer has one block, and
    `make_flow("tnaf", D)` stacks two layers with a reversal between them (as
    NAF stacks two): at equal wall-clock that beat one layer of two blocks on
    MINIBOONE, BSDS300 and Two Moons, and lost on `digits` and SIGGRAPH. The
    DSF replaced the monotone network (H = 32) on 2026-12-06: 0.30 nats
    better on SIGGRAPH (mean of four seeds), level on Two Moons, 0.2-0.9
    lower on MINIBOONE, `digits` and BSDS300 (within a standard error). At
    D = 43 the two layers are ~43k parameters and ~3.4 MFLOP per point of
    `log_prob`, against the paper configuration's ~282k and ~26 MFLOP.
    `TransformerAutoregressive.paper(D)` builds the official configuration
    (`PAPER`).

    The transformer's size does not grow with D (only the position embedding
    and, with the low-rank hypernetwork, the base per dimension do), which is
    where T-NAF's parameter savings over NAF come from.

    Direction, as `tfb.MaskedAutoregressiveFlow`: `inverse` (data -> noise) is
    one parallel transformer pass with a causal mask; `forward` (noise -> data,
    sampling) decodes one position at a time with cached keys and values (D
    single-token steps), each followed by a bracketed root solve with gradients
    by the implicit function theorem. `solve_forward(x, cached=False)` is the
    slow reference path that reruns the full transformer at every step.

    #### Example

    ```python
    tfd = tfp.distributions
    flow = TransformerAutoregressive(event_size=43)
    tnaf = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), [43]), flow)
    loss = -tf.reduce_mean(tnaf.log_prob(batch))
    samples = tnaf.sample(1000)
    ```

    Args:
      event_size: D.
      num_layers, num_heads, embedding_units, mlp_units, head_units: transformer
        sizes (1, 2, 32, 64, 64; the paper's are 4, 4, 16, 64, 256).
      psi_units: size of `psi_i` (32; the paper's 128).
      token_activation: `"tanh"` (the paper's) or `"linear"`: the token
        embedding of each `y_i`.
      mlp_activation: `"gelu"` (the paper's), `"tanh"` or `"relu"`: the
        activation of the transformer blocks' MLPs.
      transform: `"dsf"` (default), `"ddsf"`, `"network"` (the paper's) or a
        `MonotoneTransform`.
      transform_units: hidden width of each dimension's transform: its
        sigmoids (32), or H of the paper's network (128).
      transform_layers: layers of a DSF or DDSF transform.
      hypernetwork: `"low-rank"` (default) or `"mlp"` (the paper's).
      hypernetwork_units: hidden width of each `"mlp"` hypernetwork (208).
      dropout: dropout rate inside the transformer, on in training only
        (`FlowModel.fit` calls the model with `training=True`): 0.05 (`PAPER`
        keeps 0). It pays on small data sets and costs on large ones; pass 0
        for data sets large enough not to overfit, as `make_flow("tnaf", D,
        num_examples=N)` does from `tfp_tnaf.models.LARGE_DATA` rows on (the
        measurements are beside it).
      linear_slope: slope of the transform's positive linear term (the DSF's)
        or floor on it (the network's skip): keeps the inverse well
        conditioned far from the data.
      input_order: `'left-to-right'`, `'right-to-left'`, `'random'` or a
        permutation of `1..D`.
      conditional_event_size: size of a context vector `c` for `p(y | c)`
        (added to the start token), passed as `conditional_input=`.
      root_solver: `RootSolver` used by `forward`.
      dtype: float dtype of variables and inputs.
      validate_args: check inputs are finite.
      name: name of the bijector.

    #### References

    [1]: Massimiliano Patacchiola, Aliaksandra Shysheya, Katja Hofmann and
         Richard E. Turner. Transformer Neural Autoregressive Flows. 2024.
         https://arxiv.org/abs/2401.01855
    [2]: Chin-Wei Huang, David Krueger, Alexandre Lacoste and Aaron Courville.
         Neural Autoregressive Flows. In _ICML_, 2018.
    """

    def __init__(self,
                 event_size: int,
                 num_layers: int = 1,
                 num_heads: int = 2,
                 embedding_units: int = 32,
                 mlp_units: int = 64,
                 head_units: int = 64,
                 psi_units: int = 32,
                 token_activation: str = "tanh",
                 mlp_activation: str = "gelu",
                 transform: str | MonotoneTransform = "dsf",
                 transform_units: int = 32,
                 transform_layers: int | None = None,
                 hypernetwork: str = "low-rank",
                 hypernetwork_units: int = 208,
                 dropout: float = 0.05,
                 linear_slope: float = LINEAR_SLOPE,
                 input_order: Any = "left-to-right",
                 conditional_event_size: int | None = None,
                 root_solver: RootSolver | None = None,
                 dtype: Any = tf.float32,
                 validate_args: bool = False,
                 name: str = "transformer_autoregressive"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = checks.floating_dtype(dtype)
            order = checks.input_order(event_size, input_order)
            transform = make_transform(transform, transform_units, transform_layers,
                                       linear_slope, dtype)
            conditioner = TransformerConditioner(
                event_size, order, transform, psi_units=psi_units, hypernetwork=hypernetwork,
                hypernetwork_units=hypernetwork_units, token_activation=token_activation,
                mlp_activation=mlp_activation,
                conditional_event_size=conditional_event_size, dtype=dtype,
                num_layers=num_layers, num_heads=num_heads, embedding_units=embedding_units,
                mlp_units=mlp_units, head_units=head_units, dropout=dropout)
            super().__init__(conditioner, transform, root_solver, validate_args, parameters,
                             name)

    @classmethod
    def paper(cls, event_size: int, **kwargs: Any) -> TransformerAutoregressive:
        """The official T-NAF configuration (`PAPER`); `kwargs` override it.

        Four pre-norm blocks of width 16, a 256-unit head emitting `psi_i` of
        size 128, four two-layer hypernetworks (208 units) emitting a
        1 -> 128 -> 128 -> 1 monotone network per element: ~282k parameters
        at any D, and about 24 MFLOP per point at D=43 (the hypernetworks,
        run once per element, are most of it). Train it as the authors do:
        Adam 1e-3, gradient clipping to global norm 0.1
        (`tfp_tnaf.FLOWS["tnaf-paper"].recipe`).
        """
        return cls(event_size, **dict(PAPER, **kwargs))

    @property
    def hypernetwork(self):
        """The hypernetwork (psi -> pseudo-parameters): `LowRankHypernetwork` by
        default, the paper's `MonotoneHypernetwork`."""
        return self.conditioner.hypernetwork
