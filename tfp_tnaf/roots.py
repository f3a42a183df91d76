"""Bracketed root solve of elementwise increasing functions, with implicit gradients.

Every numerical inverse in the package goes through `RootSolver`: for each
element it expands a bracket until the root is enclosed, then runs a
safeguarded Newton iteration (a Newton step when it stays inside the bracket
and shrinks it fast enough, a bisection step otherwise) with a fixed iteration
budget. Both loops are `tf.while_loop`s, so the solve runs under `tf.function`
and XLA.

In the package's convention (that of `tfb.MaskedAutoregressiveFlow`) `x`
is noise and `y` data: the solver finds the data value `y` with
`f(y) = x` for an increasing data -> noise map `f`. The solution carries
gradients by the implicit function theorem: `dy/dtheta = -(df/dtheta) /
(df/dy)` and `dy/dx = 1 / (df/dy)`. No gradient flows through the iterations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import tensorflow as tf

from tfp_tnaf import checks

__all__ = ["RootResult", "RootSolver", "root_diagnostics"]

# fn(y, params) -> (f(y), log f'(y)), elementwise and increasing in y.
MonotoneFn = Callable[[tf.Tensor, Any], tuple[tf.Tensor, tf.Tensor]]


class RootResult(NamedTuple):
    """Outcome of `RootSolver.__call__`.

    Attributes:
      y: the solution, with implicit gradients attached.
      residual: `|f(y) - x|` at the solution, elementwise.
      converged: boolean, elementwise: the root was bracketed, the step or
        bracket fell below tolerance, and the residual is at most
        `sqrt(eps) * (1 + |x|)`. The last fails where the function is
        too steep for the dtype: it jumps over the target between two
        neighbouring floating-point numbers, and no representable root exists.
      num_iterations: scalar int32, Newton/bisection iterations run.
      num_bracket_steps: scalar int32, bracket doublings run.
    """

    y: tf.Tensor
    residual: tf.Tensor
    converged: tf.Tensor
    num_iterations: tf.Tensor
    num_bracket_steps: tf.Tensor


def root_diagnostics(result: RootResult) -> dict[str, tf.Tensor]:
    """Summarises a `RootResult`: worst residual, non-converged count, iterations
    and bracket doublings."""
    residual = tf.reshape(result.residual, [-1])
    return {
        # The appended zero keeps the maximum defined for empty batches.
        "max_residual": tf.reduce_max(tf.concat([residual, tf.zeros([1], residual.dtype)], 0)),
        "num_not_converged": tf.reduce_sum(tf.cast(~result.converged, tf.int32)),
        "num_iterations": result.num_iterations,
        "num_bracket_steps": result.num_bracket_steps,
    }


def _tolerance(y, rtol, atol):
    """`atol + rtol |y|`: how small a step near `y` ends the solve."""
    return atol + rtol * tf.abs(y)


def _start(bracket, x, finite):
    """The bracket the search starts from: `bracket` where given, finite and
    ordered and `x` is finite, `[-1, 1]` elsewhere; no gradient flows through it."""
    one = tf.ones_like(x)
    if bracket is None:
        return -one, one
    lo, hi = (tf.stop_gradient(tf.cast(end, x.dtype)) for end in bracket)
    usable = finite & tf.math.is_finite(lo) & tf.math.is_finite(hi) & (lo <= hi)
    return tf.where(usable, lo, -one), tf.where(usable, hi, one)


@dataclasses.dataclass(frozen=True)
class RootSolver:
    """Solves `f(y) = x` elementwise for an increasing `f` of all of R onto R.

    Args:
      max_iterations: budget of safeguarded Newton/bisection iterations.
      max_bracket_steps: budget of bracket doublings; from the default start
        `[-1, 1]` the bracket after `k` steps is `[-2**k, 2**k]`, enough for
        `k = 64` to reach `1.8e19` (a given bracket grows by its half-width,
        at least 1, doubling at each step).
      rtol: relative tolerance on the step in `x`; default `4 * eps(dtype)`.
      atol: absolute tolerance on the step in `x`; default `4 * eps(dtype)`.
      polish_steps: Newton steps in float64 after the solve, for float32 (and
        narrower) values: each is kept only where it lowers the float64
        residual, and the result is rounded once to the dtype. Where the
        float32 evaluation of `f` is noisier than its slope (terms that
        cancel), the float32 solve stops anywhere in that noise; the polished
        root is the one of `f` itself, correctly rounded where `f` is well
        conditioned. 0 turns it off; float64 values are never polished, nor
        maps that cannot be evaluated in float64 (a user's transform with
        float32 variables of its own, say).

    Raises:
      ValueError: if an argument is not positive.
    """

    max_iterations: int = 100
    max_bracket_steps: int = 64
    rtol: float | None = None
    atol: float | None = None
    polish_steps: int = 1

    def __post_init__(self):
        for field in ("max_iterations", "max_bracket_steps"):
            checks.positive_int(getattr(self, field), field)
        for field in ("rtol", "atol"):
            if getattr(self, field) is not None:
                checks.positive(getattr(self, field), field)
        checks.non_negative_int(self.polish_steps, "polish_steps")

    def __call__(self, fn: MonotoneFn, x: tf.Tensor, params: Any,
                 bracket: tuple[tf.Tensor, tf.Tensor] | None = None) -> RootResult:
        """Returns the `RootResult` of `fn(y, params) = x`.

        Args:
          fn: `fn(y, params) -> (f(y), log f'(y))`, elementwise, increasing.
            `f(y)` must have the shape of `x` for `y` of that shape. Tensors
            it captures (a transform's shared weights) get implicit gradients
            too.
          x: the values to invert, any shape.
          params: a nest of tensors the function depends on; gradients of the
            solution with respect to them follow the implicit function theorem.
          bracket: `(lo, hi)` of `x`'s shape, an interval expected to hold each
            root (a transform's `bracket`); the search starts from it and still
            expands it where it misses. Default `[-1, 1]`.
        """
        return self._solve(fn, x, params, bracket, fn, lambda frozen: frozen)

    def invert(self, transform: Any, x: tf.Tensor, params: tf.Tensor) -> RootResult:
        """Solves `transform(y, params) = x` for a `MonotoneTransform`, from its
        `bracket`.

        The iterations evaluate `transform.evaluate(y, prepared)`, with
        `prepared = transform.prepare(params)` computed once; the float64 polish
        and the implicit gradients use the transform itself (`__call__`), so
        roots and gradients are those of `__call__(y, params) = x`.

        Args:
          transform: the `MonotoneTransform`.
          x: the values to invert, shape `S`.
          params: pseudo-parameters, shape `S + [num_params]` (leading axes
            broadcasting with `x`).
        """
        x = tf.convert_to_tensor(x)
        params = tf.convert_to_tensor(params, x.dtype)
        shape = tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(params)[:-1])
        x = tf.broadcast_to(x, shape)
        params = tf.broadcast_to(params, tf.concat([shape, tf.shape(params)[-1:]], 0))
        return self._solve(transform, x, params, transform.bracket(x, params),
                           transform.evaluate, transform.prepare)

    def _solve(self, fn, x, params, bracket, step_fn, prepare) -> RootResult:
        """`__call__`, iterating `step_fn(y, prepare(params))`: a map whose
        value is `fn`'s and whose log-slope is good enough for Newton steps."""
        x = tf.convert_to_tensor(x)
        dtype = x.dtype
        eps = float(tf.experimental.numpy.finfo(dtype.as_numpy_dtype).eps)
        rtol = tf.constant(self.rtol if self.rtol is not None else 4 * eps, dtype)
        atol = tf.constant(self.atol if self.atol is not None else 4 * eps, dtype)
        frozen = tf.nest.map_structure(tf.stop_gradient, params)
        target = tf.stop_gradient(x)
        finite = tf.math.is_finite(target)
        target_safe = tf.where(finite, target, tf.zeros_like(target))

        prepared = prepare(frozen)

        def value(y):
            return step_fn(y, prepared)[0]

        lo, hi = _start(bracket, target_safe, finite)
        lo, hi, bracketed, bracket_steps = self._bracket(value, target_safe, lo, hi)
        y, converged, iterations = self._newton_bisection(step_fn, prepared, target_safe, lo,
                                                          hi, rtol, atol, finite)
        converged &= bracketed
        if self.polish_steps and dtype.size < 8:
            y = self._polish(fn, frozen, target_safe, y, rtol, atol)
        # Non-finite targets map to their limits: NaN -> NaN, +-inf -> +-inf.
        y = tf.where(finite, y, target)
        result = self._attach_implicit_gradient(fn, y, x, params, finite,
                                                converged, iterations, bracket_steps)
        # A larger residual: the map jumps over the target between neighbouring floats.
        accurate = result.residual <= eps ** 0.5 * (1 + tf.abs(target))
        return result._replace(converged=result.converged & accurate)

    def _bracket(self, value, x, lo, hi):
        """Expands `[lo, hi]` geometrically until `f(lo) <= x <= f(hi)`.

        Each step evaluates `f` once: at the end that each element moves, by
        a width that starts at `max((hi - lo) / 2, 1)` and doubles.
        Returns the bracket, whether it encloses each root, and the steps run.
        """
        f_lo, f_hi = value(lo), value(hi)

        def cond(step, lo, hi, f_lo, f_hi, width):
            return (step < self.max_bracket_steps) & tf.reduce_any((f_lo > x) | (f_hi < x))

        def body(step, lo, hi, f_lo, f_hi, width):
            below = f_lo > x
            above = f_hi < x
            probe = tf.where(below, lo - width, hi + width)
            f_probe = value(probe)
            # The end that misses the root moves outwards; the other end moves
            # onto the old one, which keeps the root enclosed.
            new_lo = tf.where(below, probe, tf.where(above, hi, lo))
            new_hi = tf.where(above, probe, tf.where(below, lo, hi))
            new_f_lo = tf.where(below, f_probe, tf.where(above, f_hi, f_lo))
            new_f_hi = tf.where(above, f_probe, tf.where(below, f_lo, f_hi))
            return step + 1, new_lo, new_hi, new_f_lo, new_f_hi, width * 2

        steps, lo, hi, f_lo, f_hi, _ = tf.while_loop(
            cond, body, (tf.constant(0), lo, hi, f_lo, f_hi, tf.maximum(0.5 * (hi - lo), 1.0)),
            maximum_iterations=self.max_bracket_steps)
        return lo, hi, (f_lo <= x) & (f_hi >= x), steps

    def _newton_bisection(self, fn, params, x, lo, hi, rtol, atol, finite):
        """Safeguarded Newton in the bracket (Numerical Recipes' rtsafe)."""
        y = 0.5 * (lo + hi)
        step_old = hi - lo
        step = step_old
        f, log_df = fn(y, params)
        done = ~finite

        def cond(i, y, lo, hi, f, log_df, step, step_old, done):
            return (i < self.max_iterations) & ~tf.reduce_all(done)

        def body(i, y, lo, hi, f, log_df, step, step_old, done):
            g = f - x
            # y becomes an end of the bracket, so a bisection always moves.
            lo = tf.where(g < 0, y, lo)
            hi = tf.where(g < 0, hi, y)
            slope = tf.exp(log_df)
            newton = g / slope
            y_newton = y - newton
            # A Newton step below the tolerance is the last one: even where it
            # rounds onto y, an end of the bracket (bisecting would restart a
            # search of the whole bracket), and where float32 noise in f would
            # have the next step undo it. (Not where the slope overflows: that
            # step is 0 whatever the residual.)
            last = (tf.math.is_finite(y_newton) & tf.math.is_finite(slope)
                    & (tf.abs(newton) <= _tolerance(y, rtol, atol)))
            use_newton = last | (tf.math.is_finite(y_newton) & (y_newton > lo) & (y_newton < hi)
                                 & (2.0 * tf.abs(newton) < tf.abs(step_old)))
            new_y = tf.where(g == 0, y, tf.where(use_newton, y_newton, 0.5 * (lo + hi)))
            new_step = tf.abs(new_y - y)
            new_f, new_log_df = fn(new_y, params)
            tol = _tolerance(new_y, rtol, atol)
            new_done = last | (new_step <= tol) | (hi - lo <= tol) | (new_f == x)
            return (i + 1,
                    tf.where(done, y, new_y),
                    lo,
                    hi,
                    tf.where(done, f, new_f),
                    tf.where(done, log_df, new_log_df),
                    tf.where(done, step, new_step),
                    tf.where(done, step_old, step),
                    done | new_done)

        i, y, lo, hi, f, log_df, step, step_old, done = tf.while_loop(
            cond, body, (tf.constant(0), y, lo, hi, f, log_df, step, step_old, done),
            maximum_iterations=self.max_iterations)
        return y, done & finite, i

    def _polish(self, fn, params, x, y, rtol, atol):
        """`polish_steps` float64 Newton steps from `y`, each kept where it lowers
        the float64 residual; rounded back to `y`'s dtype.

        Checking the residual costs an evaluation of `f`; the last step skips
        it when every element moves by at most the solve's tolerance (a
        Newton step from that close to the root of a smooth map is kept).
        """
        def wide(t):
            t = tf.convert_to_tensor(t)
            return tf.cast(t, tf.float64) if t.dtype.is_floating else t

        params, x, best = tf.nest.map_structure(wide, params), wide(x), wide(y)
        try:
            f, log_df = fn(best, params)
        except (TypeError, ValueError):  # a map that cannot run in float64 (its own
            return y                     # float32 variables): solved without the step
        best_gap, candidate = tf.abs(f - x), best
        for _ in range(self.polish_steps - 1):
            candidate = candidate - (f - x) * tf.exp(-log_df)
            best, best_gap, f, log_df = self._keep_better(fn, params, x, candidate, best,
                                                          best_gap)
        candidate = candidate - (f - x) * tf.exp(-log_df)
        near = (tf.math.is_finite(candidate)
                & (tf.abs(candidate - best) <= _tolerance(best, wide(rtol), wide(atol))))
        best = tf.cond(tf.reduce_all(near), lambda: candidate,
                       lambda: self._keep_better(fn, params, x, candidate, best, best_gap)[0])
        return tf.cast(best, y.dtype)

    @staticmethod
    def _keep_better(fn, params, x, candidate, best, best_gap):
        """Evaluates `f(candidate)`; keeps it where its residual is lower (False
        for NaN: a step that fails is dropped). Returns the new best, its
        residual, and `f`, `log f'` at `candidate`."""
        f, log_df = fn(candidate, params)
        gap = tf.abs(f - x)
        better = gap < best_gap
        return (tf.where(better, candidate, best), tf.where(better, gap, best_gap), f, log_df)

    @staticmethod
    def _attach_implicit_gradient(fn, y, x, params, finite, converged, iterations,
                                  bracket_steps):
        """y + c - stop_gradient(c) with c = -(f(y; theta) - x) / f'(y): value y,
        gradients of the implicit function theorem."""
        y = tf.stop_gradient(y)
        y_safe = tf.where(finite, y, tf.zeros_like(y))
        f, log_df = fn(y_safe, params)
        gap = f - x
        correction = -gap * tf.exp(-tf.stop_gradient(log_df))
        correction = tf.where(finite, correction, tf.zeros_like(correction))
        solution = y + (correction - tf.stop_gradient(correction))
        residual = tf.where(finite, tf.abs(tf.stop_gradient(gap)), tf.zeros_like(y))
        return RootResult(solution, residual, converged, iterations, bracket_steps)
