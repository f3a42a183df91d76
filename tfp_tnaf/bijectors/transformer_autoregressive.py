"""TransformerAutoregressive (T-NAF): a causal transformer conditioner driving monotone networks."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf.bijectors.autoregressive import MonotoneAutoregressive, stack_with_reversals
from tfp_tnaf.bijectors.monotone import LINEAR_SLOPE, check_linear_slope, monotone_network
from tfp_tnaf.nn.hypernetwork import MonotoneHypernetwork
from tfp_tnaf.nn.transformer import AutoregressiveTransformer
from tfp_tnaf.roots import RootSolver

tfb = tfp.bijectors

__all__ = ["TransformerAutoregressive", "stacked_transformer_autoregressive"]


class TransformerAutoregressive(MonotoneAutoregressive):
    """Transformer neural autoregressive flow (T-NAF).

    Each dimension is one token of a causal transformer (see
    `AutoregressiveTransformer`), which emits a pseudo-parameter vector
    `psi_i(y_<i [, c])`; small hypernetworks shared by all dimensions turn
    `psi_i` into the weights of dimension i's monotone network
    (`monotone_network`, 1 -> H -> H -> 1 with positive weights and a positive
    linear skip, a bijection of R onto R):

      z_i = f(y_i; W(psi_i)),   log |det dz/dy| = sum_i log f'(y_i; W(psi_i)).

    The transformer's size does not grow with D (only the position embedding
    does), which is where T-NAF's parameter savings over NAF come from.

    Direction, as `tfb.MaskedAutoregressiveFlow`: `inverse` (data -> noise) is
    one parallel transformer pass with a causal mask; `forward` (noise -> data,
    sampling) decodes one position at a time with cached keys and values (D
    single-token steps), each followed by a bracketed root solve with gradients
    by the implicit function theorem. `solve_forward(z, cached=False)` is the
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
        sizes (defaults as the official code: 4, 4, 16, 64, 256).
      psi_units: size of `psi_i` (128).
      transform_units: width H of the monotone network (128).
      hypernetwork_units: hidden width of each hypernetwork (208).
      dropout: dropout rate inside the transformer (training only).
      linear_slope: floor on the slope of the linear skip (keeps the inverse
        well conditioned far from the data).
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
                 num_layers: int = 4,
                 num_heads: int = 4,
                 embedding_units: int = 16,
                 mlp_units: int = 64,
                 head_units: int = 256,
                 psi_units: int = 128,
                 transform_units: int = 128,
                 hypernetwork_units: int = 208,
                 dropout: float = 0.0,
                 linear_slope: float = LINEAR_SLOPE,
                 input_order: Any = "left-to-right",
                 conditional_event_size: int | None = None,
                 root_solver: RootSolver | None = None,
                 dtype: Any = tf.float32,
                 validate_args: bool = False,
                 name: str = "transformer_autoregressive"):
        parameters = dict(locals())
        self._linear_slope = check_linear_slope(linear_slope)
        if isinstance(psi_units, bool) or not isinstance(psi_units, int) or psi_units < 1:
            raise ValueError(f"`psi_units` must be a positive integer; got {psi_units!r}.")
        with tf.name_scope(name) as name:
            super().__init__(event_size, input_order, conditional_event_size, root_solver,
                             dtype, validate_args, parameters, name)
            self._transformer = AutoregressiveTransformer(
                self.event_size, output_units=psi_units, num_layers=num_layers,
                num_heads=num_heads, embedding_units=embedding_units, mlp_units=mlp_units,
                head_units=head_units, dropout=dropout,
                conditional_event_size=conditional_event_size, dtype=self.dtype)
            self._hypernetwork = MonotoneHypernetwork(
                transform_units, hypernetwork_units, psi_units, dtype=self.dtype)

    @property
    def conditioner(self) -> AutoregressiveTransformer:
        return self._transformer

    @property
    def hypernetwork(self) -> MonotoneHypernetwork:
        return self._hypernetwork

    def _transform(self, y, params):
        pseudo_params, log_mixing = params
        return monotone_network(y, pseudo_params, log_mixing, self._linear_slope)

    def _inverse_and_log_det(self, y, conditional_input):
        flat, c, batch_shape = self._flatten_batch(y, conditional_input)
        in_sequence = self._to_sequence(flat)
        params = self._hypernetwork(self._transformer(in_sequence, c))
        z, log_det = self._transform(in_sequence, (params, self._hypernetwork.log_mixing))
        return self._from_sequence(z, batch_shape), self._from_sequence(log_det, batch_shape)

    def _decoder(self, z, conditional_input, cached: bool = True):
        flat, c, batch_shape = self._flatten_batch(z, conditional_input)
        sequence = tf.constant(self._sequence, tf.int32)
        log_mixing = self._hypernetwork.log_mixing

        def psi_at(position, x_flat, cache):
            if not cached:
                psi = self._transformer(self._to_sequence(x_flat), c)
                return tf.gather(psi, position, axis=-2), cache
            previous = tf.gather(x_flat, sequence[tf.maximum(position - 1, 0)], axis=-1)
            return self._transformer.decode_step(position, previous, cache, c)

        def step_fn(i, x, cache):
            psi, cache = psi_at(self._positions[i], tf.reshape(x, [-1, self.event_size]), cache)
            params = tf.reshape(self._hypernetwork(psi),
                                tf.concat([batch_shape, [self._hypernetwork.num_params]], 0))
            return self._transform, (params, log_mixing), cache

        cache = self._transformer.initial_cache(tf.shape(flat)[0]) if cached else ()
        return step_fn, cache


def stacked_transformer_autoregressive(event_size: int, num_flows: int,
                                       **kwargs) -> tfb.Chain:
    """`num_flows` T-NAF bijectors with `tfb.Permute` reversals between them."""
    return stack_with_reversals(
        lambda k: TransformerAutoregressive(event_size, name=f"transformer_autoregressive_{k}",
                                            **kwargs),
        event_size, num_flows)
