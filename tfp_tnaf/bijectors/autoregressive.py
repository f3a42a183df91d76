"""Shared machinery of the autoregressive flows: validation and sequential sampling.

`MonotoneAutoregressive` fixes the direction convention of
`tfb.MaskedAutoregressiveFlow`: `inverse` (data -> noise) is one parallel pass,
`forward` (noise -> data) visits the dimensions in their autoregressive order
and solves one increasing scalar equation per dimension with the shared
`RootSolver`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf.bijectors.monotone import check_positive_int
from tfp_tnaf.roots import RootResult, RootSolver

tfb = tfp.bijectors

__all__ = ["MonotoneAutoregressive", "make_input_order", "solve_autoregressive",
           "stack_with_reversals"]

# step_fn(i, x, state) -> (fn, params, new_state); fn(t, params) -> (value, log
# derivative) is dimension i's increasing map of its own data value t.
StepFn = Callable[[tf.Tensor, tf.Tensor, Any], tuple[Callable, Any, Any]]


def make_input_order(event_size: int, input_order: Any = "left-to-right",
                     seed: int | None = None) -> np.ndarray:
    """Degrees 1..D of the dimensions, as `tfb.AutoregressiveNetwork` takes them.

    Args:
      event_size: D.
      input_order: `'left-to-right'`, `'right-to-left'`, `'random'` or an array
        holding a permutation of `1..D` (dimension `i` is visited `order[i]`-th).
      seed: seed of the `'random'` order; without one, NumPy's global state
        draws it, as in TFP's MADE.
    """
    if isinstance(input_order, str):
        if input_order == "left-to-right":
            return np.arange(1, event_size + 1)
        if input_order == "right-to-left":
            return np.arange(event_size, 0, -1)
        if input_order == "random":
            # NumPy's global state without a seed, as TFP's MADE: reproducible
            # under `tf_keras.utils.set_random_seed`.
            rng = np.random if seed is None else np.random.RandomState(seed)
            return rng.permutation(event_size) + 1
        raise ValueError("`input_order` must be 'left-to-right', 'right-to-left', 'random' or "
                         f"a permutation of 1..{event_size}; got {input_order!r}.")
    order = np.asarray(input_order)
    if order.shape != (event_size,) or not np.array_equal(np.sort(order),
                                                          np.arange(1, event_size + 1)):
        raise ValueError(f"`input_order` must be a permutation of 1..{event_size}; "
                         f"got {input_order!r}.")
    return order.astype(np.int64)


def solve_autoregressive(z: tf.Tensor, sequence: np.ndarray, step_fn: StepFn,
                         root_solver: RootSolver, state: Any = ()) -> RootResult:
    """Inverts an autoregressive increasing map one dimension at a time.

    Args:
      z: noise, shape `batch + [D]`.
      sequence: the dimensions in the order they are solved (`argsort` of the
        degrees).
      step_fn: `step_fn(i, x, state) -> (fn, params, state)`; `x` holds the
        dimensions solved so far (zeros elsewhere).
      root_solver: the `RootSolver` of each scalar equation.
      state: loop state of `step_fn` (a decoder cache, say).

    Returns:
      `RootResult` with `x`, `residual`, `converged` of shape `batch + [D]` and
      the largest iteration and bracket-step counts of any step.
    """
    event_size = len(sequence)
    sequence = tf.constant(sequence, tf.int32)
    x0 = tf.zeros_like(z)
    residual0 = tf.zeros_like(z)
    converged0 = tf.ones(tf.shape(z), tf.bool)

    def body(k, x, residual, converged, iterations, bracket_steps, state):
        i = sequence[k]
        fn, params, state = step_fn(i, x, state)
        result = root_solver(fn, tf.gather(z, i, axis=-1), params)
        here = tf.equal(tf.range(event_size), i)
        x = tf.where(here, result.x[..., tf.newaxis], x)
        residual = tf.where(here, result.residual[..., tf.newaxis], residual)
        converged = tf.where(here, result.converged[..., tf.newaxis], converged)
        return (k + 1, x, residual, converged, tf.maximum(iterations, result.num_iterations),
                tf.maximum(bracket_steps, result.num_bracket_steps), state)

    _, x, residual, converged, iterations, bracket_steps, _ = tf.while_loop(
        lambda k, *_: k < event_size, body,
        (tf.constant(0), x0, residual0, converged0, tf.constant(0), tf.constant(0), state),
        maximum_iterations=event_size)
    return RootResult(x, residual, converged, iterations, bracket_steps)


class MonotoneAutoregressive(tfb.Bijector):
    """Base class of the autoregressive flows with increasing scalar transforms.

    Subclasses implement:
      * `_inverse_and_log_det(y, conditional_input)`: the data -> noise map of
        all dimensions in one pass, and the elementwise log-derivatives.
      * `_decoder(z, conditional_input) -> (step_fn, state)` for
        `solve_autoregressive`.
    """

    def __init__(self, event_size: int, input_order: Any, conditional_event_size: int | None,
                 root_solver: RootSolver | None, dtype, validate_args: bool, parameters,
                 name: str):
        if isinstance(event_size, bool) or not isinstance(event_size, (int, np.integer)) \
                or event_size < 1:
            raise ValueError(f"`event_size` must be a positive integer; got {event_size!r}.")
        if conditional_event_size is not None and (
                isinstance(conditional_event_size, bool)
                or not isinstance(conditional_event_size, (int, np.integer))
                or conditional_event_size < 1):
            raise ValueError("`conditional_event_size` must be a positive integer or None; "
                             f"got {conditional_event_size!r}.")
        if root_solver is not None and not isinstance(root_solver, RootSolver):
            raise ValueError(f"`root_solver` must be a RootSolver; got {root_solver!r}.")
        dtype = tf.as_dtype(dtype)
        if not dtype.is_floating:
            raise ValueError(f"`dtype` must be a floating dtype; got {dtype.name}.")
        self._event_size = int(event_size)
        self._input_order = make_input_order(self._event_size, input_order)
        self._sequence = np.argsort(self._input_order, kind="stable")
        # Position of each dimension in the autoregressive sequence.
        self._positions = tf.constant(self._input_order - 1, tf.int32)
        self._conditional_event_size = conditional_event_size
        self._root_solver = root_solver or RootSolver()
        super().__init__(forward_min_event_ndims=1, validate_args=validate_args,
                         parameters=parameters, dtype=dtype, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return dict()

    # A flow makes its own weights, so two flows built with the same arguments
    # are different maps. TFP compares bijectors by their constructor arguments
    # and keys its bijector cache by that equality: without these, one flow
    # would be handed another's cached results for the same input tensor.
    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    @property
    def event_size(self) -> int:
        return self._event_size

    @property
    def input_order(self) -> np.ndarray:
        """Degree (1..D) of each dimension: the order `forward` solves them in."""
        return self._input_order

    @property
    def conditional_event_size(self) -> int | None:
        return self._conditional_event_size

    @property
    def root_solver(self) -> RootSolver:
        return self._root_solver

    def _is_increasing(self, **kwargs):
        return True

    def _check_event(self, t: tf.Tensor, name: str) -> tf.Tensor:
        size = tf.compat.dimension_value(t.shape[-1]) if t.shape.rank else None
        if t.shape.rank == 0:
            raise ValueError(f"`{name}` must have at least one axis, the event of size "
                             f"{self._event_size}; got a scalar.")
        if size is not None and size != self._event_size:
            raise ValueError(f"Expected event size {self._event_size} on the last axis of "
                             f"`{name}`; got {size} (shape {t.shape}).")
        if self.validate_args:
            t = tf.debugging.assert_all_finite(t, f"{self.name}: `{name}` must be finite.")
        return t

    def _check_conditional(self, conditional_input):
        if self._conditional_event_size is None:
            if conditional_input is not None:
                raise ValueError(f"{self.name} was built without `conditional_event_size`; "
                                 "got a `conditional_input`.")
            return None
        if conditional_input is None:
            raise ValueError(f"{self.name} is conditional: pass `conditional_input` with "
                             f"{self._conditional_event_size} values on its last axis.")
        c = tf.convert_to_tensor(conditional_input, dtype=self.dtype, name="conditional_input")
        size = tf.compat.dimension_value(c.shape[-1]) if c.shape.rank else None
        if size != self._conditional_event_size:
            raise ValueError(f"Expected `conditional_input` with {self._conditional_event_size} "
                             f"values on its last axis; got shape {c.shape}.")
        if self.validate_args:
            c = tf.debugging.assert_all_finite(c, f"{self.name}: `conditional_input` must be "
                                               "finite.")
        return c

    def _flatten_batch(self, t, c):
        """Broadcasts `t` and `c` and flattens their batch axes: `([N, D], [N, C], shape)`."""
        batch_shape = tf.shape(t)[:-1]
        if c is not None:
            batch_shape = tf.broadcast_dynamic_shape(batch_shape, tf.shape(c)[:-1])
            c = tf.reshape(tf.broadcast_to(c, tf.concat([batch_shape, tf.shape(c)[-1:]], 0)),
                           [-1, self._conditional_event_size])
        t = tf.reshape(tf.broadcast_to(t, tf.concat([batch_shape, [self._event_size]], 0)),
                       [-1, self._event_size])
        return t, c, batch_shape

    def _to_sequence(self, t):
        """Reorders the last axis from dimensions to autoregressive positions."""
        return tf.gather(t, self._sequence, axis=-1)

    def _from_sequence(self, t, batch_shape):
        """Positions back to dimensions, and `[N, D]` back to `batch_shape + [D]`."""
        return tf.reshape(tf.gather(t, self._positions, axis=-1),
                          tf.concat([batch_shape, [self._event_size]], 0))

    def _inverse_and_log_det(self, y, conditional_input):
        raise NotImplementedError

    def _decoder(self, z, conditional_input, **decoder_kwargs):
        raise NotImplementedError

    def _inverse(self, y, conditional_input=None):
        checked = self._check_event(y, "y")
        z, log_det = self._inverse_and_log_det(checked,
                                               self._check_conditional(conditional_input))
        # The conditioner pass gave the log-determinant too: leave it in TFP's
        # bijector cache, so `log_prob` (`inverse`, then `inverse_log_det_jacobian`
        # on the same tensor) runs the conditioner once.
        kwargs = {} if conditional_input is None else {"conditional_input": conditional_input}
        self._cache.inverse_attributes(y, **kwargs)["ildj"] = tf.reduce_sum(log_det, axis=-1)
        return z

    def _inverse_log_det_jacobian(self, y, conditional_input=None):
        y = self._check_event(y, "y")
        log_det = self._inverse_and_log_det(y, self._check_conditional(conditional_input))[1]
        return tf.reduce_sum(log_det, axis=-1)

    def _forward(self, x, conditional_input=None):
        return self.solve_forward(x, conditional_input=conditional_input).x

    def solve_forward(self, x, conditional_input=None, **decoder_kwargs) -> RootResult:
        """Noise -> data as a `RootResult`: samples, residuals, convergence flags.

        `decoder_kwargs` go to the subclass's decoder (for example
        `cached=False` selects T-NAF's uncached reference path).
        """
        x = self._check_event(tf.convert_to_tensor(x, dtype=self.dtype, name="x"), "x")
        conditional_input = self._check_conditional(conditional_input)
        if conditional_input is not None:
            shape = tf.broadcast_dynamic_shape(tf.shape(x)[:-1],
                                               tf.shape(conditional_input)[:-1])
            x = tf.broadcast_to(x, tf.concat([shape, [self._event_size]], 0))
            conditional_input = tf.broadcast_to(
                conditional_input, tf.concat([shape, [self._conditional_event_size]], 0))
        step_fn, state = self._decoder(x, conditional_input, **decoder_kwargs)
        return solve_autoregressive(x, self._sequence, step_fn, self._root_solver, state)


def stack_with_reversals(make_flow: Callable[[int], tfb.Bijector], event_size: int,
                         num_flows: int) -> tfb.Chain:
    """`num_flows` flows `make_flow(k)` with `tfb.Permute` reversals between them."""
    num_flows = check_positive_int(num_flows, "num_flows")
    reverse = list(reversed(range(event_size)))
    layers = []
    for k in range(num_flows):
        if k:
            layers.append(tfb.Permute(reverse))
        layers.append(make_flow(k))
    return tfb.Chain(layers)
