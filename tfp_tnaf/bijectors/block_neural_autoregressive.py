"""BlockNeuralAutoregressive (B-NAF): one block-triangular monotone network, with sampling."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfp_tnaf import checks
from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive
from tfp_tnaf.nn.block_network import BlockAutoregressiveNetwork, BlockConditioner
from tfp_tnaf.roots import RootSolver
from tfp_tnaf.transforms import LINEAR_SLOPE, BlockPathTransform

__all__ = ["BlockNeuralAutoregressive"]


class BlockNeuralAutoregressive(MonotoneAutoregressive):
    """Block neural autoregressive flow (B-NAF), with a numerical inverse.

    One network maps data `y` in R^D to noise `x` in R^D, with no separate
    conditioner: every layer's weight matrix is made of `D x D` blocks, those on
    the diagonal positive (`exp`), those below it free, those above it zero,
    and each row weight-normalised. With monotone activations (tanh) between
    layers, `x_i` depends on `y_1..y_i` only and increases with `y_i`; the
    Jacobian is triangular and

      log |det dx/dy| = sum_i log dx_i/dy_i,

    where `dx_i/dy_i` is the product of the diagonal blocks and activation
    derivatives along position i, evaluated in log space (log-matrix-vector
    products, logsumexp). See `BlockAutoregressiveNetwork`.

    **Onto R.** The paper's network ends in a bounded tanh stack, so its image
    is bounded and its density integrates to less than one. Here the output is
    `x_i = alpha_i f_i(y) + beta_i y_i` with `beta_i >= linear_slope > 0` (a
    positive linear skip, or the gated residual of the paper's code plus the
    same floor): every `x_i` is an increasing bijection of R onto R in `y_i`,
    with slope at least `linear_slope`, which also keeps the numerical inverse
    well conditioned far from the data.

    Direction, as `tfb.MaskedAutoregressiveFlow`: `inverse` (data -> noise) is
    one network pass, what `TransformedDistribution.log_prob` uses. For
    `forward` (noise -> data, sampling) the network is seen as a conditioner
    (`BlockConditioner`: with `y_<i` solved, what the earlier positions feed
    position i) of a scalar transform (`BlockPathTransform`: position i's path
    through its diagonal blocks), solved dimension by dimension like every
    flow of the package, with gradients by the implicit function theorem.

    #### Example

    ```python
    tfd = tfp.distributions
    flow = BlockNeuralAutoregressive(event_size=2, transform_units=16, transform_layers=2)
    bnaf = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), [2]), flow)
    loss = -tf.reduce_mean(bnaf.log_prob(batch))  # one network pass
    samples = bnaf.sample(1000)                   # D root solves
    ```

    Args:
      event_size: D.
      transform_units: hidden values per dimension (a layer has
        `D * transform_units`).
      transform_layers: hidden layers; the network has `transform_layers + 1`
        block layers.
      gated_residual: output `sigmoid(s) f(y) + (sigmoid(-s) + linear_slope) y`
        (the paper's code) instead of `f(y) + (softplus(s) + linear_slope) y`.
      linear_slope: floor `> 0` on the slope of the linear term.
      input_order: `'left-to-right'`, `'right-to-left'`, `'random'` or a
        permutation of `1..D` (the degrees, as `tfb.AutoregressiveNetwork`).
      conditional_event_size: size of a context `c` for `p(y | c)`, added to
        the first layer, passed as `conditional_input=`.
      root_solver: `RootSolver` used by `forward`.
      dtype: float dtype of variables and inputs.
      validate_args: check inputs are finite.
      name: name of the bijector.

    Raises:
      ValueError: on a non-positive size, `linear_slope <= 0`, or an invalid
        order.

    #### References

    [1]: Nicola De Cao, Ivan Titov and Wilker Aziz. Block Neural Autoregressive
         Flow. In _UAI_, 2019. https://arxiv.org/abs/1904.04676
    """

    def __init__(self,
                 event_size: int,
                 transform_units: int = 16,
                 transform_layers: int = 2,
                 gated_residual: bool = False,
                 linear_slope: float = LINEAR_SLOPE,
                 input_order: Any = "left-to-right",
                 conditional_event_size: int | None = None,
                 root_solver: RootSolver | None = None,
                 dtype: Any = tf.float32,
                 validate_args: bool = False,
                 name: str = "block_neural_autoregressive"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = checks.floating_dtype(dtype)
            order = checks.input_order(event_size, input_order)
            conditional_event_size = checks.optional_positive_int(conditional_event_size,
                                                                  "conditional_event_size")
            network = BlockAutoregressiveNetwork(
                event_size, transform_units=transform_units, transform_layers=transform_layers,
                gated_residual=gated_residual, linear_slope=linear_slope,
                conditional_event_size=conditional_event_size, dtype=dtype)
            transform = BlockPathTransform(network.widths)
            conditioner = BlockConditioner(network, order, transform, conditional_event_size)
            super().__init__(conditioner, transform, root_solver, validate_args, parameters,
                             name)

    @property
    def network(self) -> BlockAutoregressiveNetwork:
        return self.conditioner.network

    def _inverse_and_log_det(self, y, conditional_input):
        # The network pass gives the outputs and the log-derivatives at once:
        # cheaper than the conditioner's path parameters and then the transform.
        conditioner = self.conditioner
        x, log_det = conditioner.network(conditioner.to_sequence(y), conditional_input)
        return conditioner.from_sequence(x), conditioner.from_sequence(log_det)
