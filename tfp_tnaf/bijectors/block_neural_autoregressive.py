"""BlockNeuralAutoregressive (B-NAF): one block-triangular monotone network, with sampling."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive, stack_with_reversals
from tfp_tnaf.bijectors.monotone import LINEAR_SLOPE, check_linear_slope
from tfp_tnaf.nn.block_network import BlockAutoregressiveNetwork
from tfp_tnaf.roots import RootSolver

tfb = tfp.bijectors

__all__ = ["BlockNeuralAutoregressive", "stacked_block_neural_autoregressive"]


class BlockNeuralAutoregressive(MonotoneAutoregressive):
    """Block neural autoregressive flow (B-NAF), with a numerical inverse.

    One network maps data `y` in R^D to noise `z` in R^D, with no separate
    conditioner: every layer's weight matrix is made of `D x D` blocks, those on
    the diagonal positive (`exp`), those below it free, those above it zero,
    and each row weight-normalised. With monotone activations (tanh) between
    layers, `z_i` depends on `y_1..y_i` only and increases with `y_i`; the
    Jacobian is triangular and

      log |det dz/dy| = sum_i log dz_i/dy_i,

    where `dz_i/dy_i` is the product of the diagonal blocks and activation
    derivatives along position i, evaluated in log space (log-matrix-vector
    products, logsumexp). See `BlockAutoregressiveNetwork`.

    **Onto R.** The paper's network ends in a bounded tanh stack, so its image
    is bounded and its density integrates to less than one. Here the output is
    `z_i = alpha_i f_i(y) + beta_i y_i` with `beta_i >= linear_slope > 0` (a
    positive linear skip, or the gated residual of the paper's code plus the
    same floor): every `z_i` is an increasing bijection of R onto R in `y_i`,
    with slope at least `linear_slope`, which also keeps the numerical inverse
    well conditioned far from the data.

    Direction, as `tfb.MaskedAutoregressiveFlow`: `inverse` (data -> noise) is
    one network pass, what `TransformedDistribution.log_prob` uses; `forward`
    (noise -> data, sampling) visits the dimensions in order: with `x_<i`
    solved, a network pass gives what the earlier positions feed to position
    i, and a bracketed root solve of the scalar path `y_i -> z_i` gives `x_i`,
    with gradients by the implicit function theorem.

    #### Example

    ```python
    tfd = tfp.distributions
    flow = BlockNeuralAutoregressive(event_size=2, hidden_units=16, num_layers=2)
    bnaf = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0., 1.), [2]), flow)
    loss = -tf.reduce_mean(bnaf.log_prob(batch))  # one network pass
    samples = bnaf.sample(1000)                   # D root solves
    deeper = stacked_block_neural_autoregressive(2, num_flows=3)
    ```

    Args:
      event_size: D.
      hidden_units: hidden values per dimension (a layer has `D * hidden_units`).
      num_layers: hidden layers; the network has `num_layers + 1` block layers.
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
                 hidden_units: int = 16,
                 num_layers: int = 2,
                 gated_residual: bool = False,
                 linear_slope: float = LINEAR_SLOPE,
                 input_order: Any = "left-to-right",
                 conditional_event_size: int | None = None,
                 root_solver: RootSolver | None = None,
                 dtype: Any = tf.float32,
                 validate_args: bool = False,
                 name: str = "block_neural_autoregressive"):
        parameters = dict(locals())
        if not check_linear_slope(linear_slope) > 0:
            raise ValueError("`linear_slope` must be positive: B-NAF's tanh network is "
                             f"bounded, the linear term makes it onto R; got {linear_slope!r}.")
        with tf.name_scope(name) as name:
            super().__init__(event_size, input_order, conditional_event_size, root_solver,
                             dtype, validate_args, parameters, name)
            self._network = BlockAutoregressiveNetwork(
                self.event_size, hidden_units=hidden_units, num_layers=num_layers,
                gated_residual=gated_residual, linear_slope=linear_slope,
                conditional_event_size=conditional_event_size, dtype=self.dtype)

    @property
    def network(self) -> BlockAutoregressiveNetwork:
        return self._network

    def _inverse_and_log_det(self, y, conditional_input):
        flat, c, batch_shape = self._flatten_batch(y, conditional_input)
        z, log_det = self._network(self._to_sequence(flat), c)
        return self._from_sequence(z, batch_shape), self._from_sequence(log_det, batch_shape)

    def _decoder(self, z, conditional_input):
        # The normalised weights do not change during sampling: compute them once.
        weights = self._network.layer_weights()
        residual = self._network.residual_weights()

        def step_fn(i, x, state):
            params = self._network.position_params(
                self._positions[i], self._to_sequence(x), conditional_input, weights, residual)
            return BlockAutoregressiveNetwork.position_path, params, state

        return step_fn, ()


def stacked_block_neural_autoregressive(event_size: int, num_flows: int,
                                        **kwargs) -> tfb.Chain:
    """`num_flows` B-NAF bijectors with `tfb.Permute` reversals between them."""
    return stack_with_reversals(
        lambda k: BlockNeuralAutoregressive(event_size,
                                            name=f"block_neural_autoregressive_{k}", **kwargs),
        event_size, num_flows)
