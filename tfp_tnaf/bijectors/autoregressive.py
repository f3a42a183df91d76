"""`MonotoneAutoregressive`: conditioner -> pseudo-parameters -> monotone transform.

The one data path of every autoregressive flow of the package. A `Conditioner`
gives each dimension's pseudo-parameters from the dimensions before it; a
`MonotoneTransform` maps each data value to noise with them. `inverse` (data ->
noise) is one parallel conditioner pass; `forward` (noise -> data) visits the
dimensions in their autoregressive order, each a conditioner step and a
bracketed root solve of the transform (`RootSolver`). The direction convention
is that of `tfb.MaskedAutoregressiveFlow`: `x` is noise, `y` data.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_tnaf.nn.conditioner import Conditioner, Step
from tfp_tnaf.roots import RootResult, RootSolver
from tfp_tnaf.transforms import MonotoneTransform

tfb = tfp.bijectors

__all__ = ["MonotoneAutoregressive", "solve_autoregressive"]


def solve_autoregressive(x: tf.Tensor, sequence: np.ndarray, step: Step, state,
                         transform: MonotoneTransform, root_solver: RootSolver) -> RootResult:
    """Inverts an autoregressive increasing map one dimension at a time.

    Args:
      x: noise, `[N, D]`.
      sequence: the dimensions in the order they are solved.
      step: `step(i, y, state) -> (params [N, P], state)`, dimension i's
        pseudo-parameters given the dimensions solved so far in `y` (zeros
        elsewhere), from `Conditioner.decoder`.
      state: the initial state of `step`.
      transform: the transform whose root is sought.
      root_solver: the `RootSolver` of each scalar equation.

    Returns:
      `RootResult` with `y`, `residual`, `converged` of shape `[N, D]` and the
      largest iteration and bracket-step counts of any step.
    """
    event_size = len(sequence)
    sequence = tf.constant(sequence, tf.int32)

    def body(k, y, residual, converged, iterations, bracket_steps, state):
        i = sequence[k]
        params, state = step(i, y, state)
        x_i = tf.gather(x, i, axis=-1)
        result = root_solver.invert(transform, x_i, params)
        here = tf.equal(tf.range(event_size), i)
        y = tf.where(here, result.y[..., tf.newaxis], y)
        residual = tf.where(here, result.residual[..., tf.newaxis], residual)
        converged = tf.where(here, result.converged[..., tf.newaxis], converged)
        return (k + 1, y, residual, converged, tf.maximum(iterations, result.num_iterations),
                tf.maximum(bracket_steps, result.num_bracket_steps), state)

    start = (tf.constant(0), tf.zeros_like(x), tf.zeros_like(x), tf.ones(tf.shape(x), tf.bool),
             tf.constant(0), tf.constant(0), state)
    _, y, residual, converged, iterations, bracket_steps, _ = tf.while_loop(
        lambda k, *_: k < event_size, body, start, maximum_iterations=event_size)
    return RootResult(y, residual, converged, iterations, bracket_steps)


class MonotoneAutoregressive(tfb.Bijector):
    """Base class of the autoregressive flows: a conditioner and a monotone transform.

    `inverse(y)`: `params = conditioner(y)`, `x_i = transform(y_i, params_i)`,
    and `log |det dx/dy| = sum_i log dx_i/dy_i` (the Jacobian is triangular).
    `forward(x)`: for each dimension in order, `conditioner.decoder`'s step,
    then a root solve. Subclasses build the conditioner and the transform; a
    subclass whose parallel pass is cheaper fused may override
    `_inverse_and_log_det`.

    Args:
      conditioner: the `Conditioner` (event size, order, context size, dtype).
      transform: the `MonotoneTransform` its pseudo-parameters are for.
      root_solver: `RootSolver` used by `forward`; default `RootSolver()`.
      validate_args: check that inputs are finite.
      parameters: the subclass's `dict(locals())`.
      name: name of the bijector.
    """

    def __init__(self, conditioner: Conditioner, transform: MonotoneTransform,
                 root_solver: RootSolver | None, validate_args: bool, parameters: dict,
                 name: str):
        if root_solver is not None and not isinstance(root_solver, RootSolver):
            raise ValueError(f"`root_solver` must be a RootSolver; got {root_solver!r}.")
        if conditioner.num_params != transform.num_params:
            raise ValueError(f"The conditioner emits {conditioner.num_params} pseudo-parameters "
                             f"per dimension; the transform takes {transform.num_params}.")
        self._conditioner = conditioner
        self._transform = transform
        self._root_solver = root_solver or RootSolver()
        super().__init__(forward_min_event_ndims=1, validate_args=validate_args,
                         parameters=parameters, dtype=conditioner.dtype, name=name)

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
        return self._conditioner.event_size

    @property
    def input_order(self) -> np.ndarray:
        """Degree (1..D) of each dimension: the order `forward` solves them in."""
        return self._conditioner.input_order

    @property
    def conditional_event_size(self) -> int | None:
        return self._conditioner.conditional_event_size

    @property
    def conditioner(self) -> Conditioner:
        return self._conditioner

    @property
    def transform(self) -> MonotoneTransform:
        return self._transform

    @property
    def root_solver(self) -> RootSolver:
        return self._root_solver

    def _is_increasing(self, **kwargs):
        return True

    def _check_event(self, t: tf.Tensor, name: str) -> tf.Tensor:
        size = tf.compat.dimension_value(t.shape[-1]) if t.shape.rank else None
        if t.shape.rank == 0:
            raise ValueError(f"`{name}` must have at least one axis, the event of size "
                             f"{self.event_size}; got a scalar.")
        if size is not None and size != self.event_size:
            raise ValueError(f"Expected event size {self.event_size} on the last axis of "
                             f"`{name}`; got {size} (shape {t.shape}).")
        if self.validate_args:
            t = tf.debugging.assert_all_finite(t, f"{self.name}: `{name}` must be finite.")
        return t

    def _check_conditional(self, conditional_input):
        expected = self.conditional_event_size
        if expected is None:
            if conditional_input is not None:
                raise ValueError(f"{self.name} was built without `conditional_event_size`; "
                                 "got a `conditional_input`.")
            return None
        if conditional_input is None:
            raise ValueError(f"{self.name} is conditional: pass `conditional_input` with "
                             f"{expected} values on its last axis.")
        c = tf.convert_to_tensor(conditional_input, dtype=self.dtype, name="conditional_input")
        size = tf.compat.dimension_value(c.shape[-1]) if c.shape.rank else None
        if size != expected:
            raise ValueError(f"Expected `conditional_input` with {expected} values on its last "
                             f"axis; got shape {c.shape}.")
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
                           [-1, self.conditional_event_size])
        t = tf.reshape(tf.broadcast_to(t, tf.concat([batch_shape, [self.event_size]], 0)),
                       [-1, self.event_size])
        return t, c, batch_shape

    def _unflatten(self, t, batch_shape):
        """`[N, D]` back to `batch_shape + [D]`."""
        return tf.reshape(t, tf.concat([batch_shape, [self.event_size]], 0))

    def _inverse_and_log_det(self, y, conditional_input):
        """`[N, D]` data -> `([N, D] noise, [N, D] log-derivatives)`, one pass."""
        return self._transform(y, self._conditioner(y, conditional_input))

    def _inverse_pass(self, y, conditional_input):
        """Checks, flattens and runs `_inverse_and_log_det`: results in `y`'s batch shape."""
        y = self._check_event(y, "y")
        flat, c, batch_shape = self._flatten_batch(y, self._check_conditional(conditional_input))
        x, log_det = self._inverse_and_log_det(flat, c)
        return self._unflatten(x, batch_shape), self._unflatten(log_det, batch_shape)

    def _inverse(self, y, conditional_input=None):
        x, log_det = self._inverse_pass(y, conditional_input)
        # The conditioner pass gave the log-determinant too: leave it in TFP's
        # bijector cache, so `log_prob` (`inverse`, then `inverse_log_det_jacobian`
        # on the same tensor) runs the conditioner once.
        kwargs = {} if conditional_input is None else {"conditional_input": conditional_input}
        self._cache.inverse_attributes(y, **kwargs)["ildj"] = tf.reduce_sum(log_det, axis=-1)
        return x

    def _inverse_log_det_jacobian(self, y, conditional_input=None):
        return tf.reduce_sum(self._inverse_pass(y, conditional_input)[1], axis=-1)

    def _forward(self, x, conditional_input=None):
        return self.solve_forward(x, conditional_input=conditional_input).y

    def solve_forward(self, x, conditional_input=None, cached: bool = True) -> RootResult:
        """Noise -> data as a `RootResult`: samples, residuals, convergence flags.

        Args:
          x: noise, `batch + [D]`.
          conditional_input: the context of a conditional flow.
          cached: use the conditioner's sequential fast path where it has one
            (T-NAF's cached keys and values); `False` reruns the parallel pass
            at every step (the reference). Conditioners without a cache (MADE,
            B-NAF's network) take the same path either way.
        """
        x = self._check_event(tf.convert_to_tensor(x, dtype=self.dtype, name="x"), "x")
        flat, c, batch_shape = self._flatten_batch(x, self._check_conditional(conditional_input))
        step, state = self._conditioner.decoder(tf.shape(flat)[0], c, cached=cached)
        result = solve_autoregressive(flat, self._conditioner.sequence, step, state,
                                      self._transform, self._root_solver)
        return result._replace(y=self._unflatten(result.y, batch_shape),
                               residual=self._unflatten(result.residual, batch_shape),
                               converged=self._unflatten(result.converged, batch_shape))
