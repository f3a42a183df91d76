"""Elementwise bijectors: a `MonotoneTransform` with its pseudo-parameters, as a TFP bijector.

Direction (as `tfb.MaskedAutoregressiveFlow`): `inverse` (data `y` -> noise
`x`) is the transform, with its log-derivative computed in log space;
`forward` (noise -> data) is its numerical inverse by `RootSolver`.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import parameter_properties, tensor_util

from tfp_tnaf.roots import RootResult, RootSolver
from tfp_tnaf.transforms import (
    LINEAR_SLOPE,
    DeepDenseSigmoidalTransform,
    DeepSigmoidalTransform,
    MonotoneTransform,
)

tfb = tfp.bijectors

__all__ = ["DeepDenseSigmoidal", "DeepSigmoidal", "MonotoneElementwise"]


class MonotoneElementwise(tfb.Bijector):
    """An increasing scalar bijection of R onto R: `transform` at `params`, elementwise.

    `inverse(y)` is `transform(y, params)`; `forward(x)` solves
    `transform(y, params) = x` for `y` with `root_solver`, with gradients from
    the implicit function theorem. Any `MonotoneTransform` plugs in:

    ```python
    transform = MonotoneNetworkTransform(units=8)
    bijector = MonotoneElementwise(params, transform)  # params [..., transform.num_params]
    ```

    Args:
      params: float `Tensor`, pseudo-parameters on the last axis (in the
        transform's `layout`); the leading axes are the batch shape.
      transform: the `MonotoneTransform`.
      root_solver: `RootSolver` for `forward`; default `RootSolver()`.
      validate_args: check inputs are finite.
      name: name of the bijector.

    Raises:
      ValueError: if the last axis of `params` is not `transform.num_params` long.
    """

    def __init__(self, params, transform: MonotoneTransform,
                 root_solver: RootSolver | None = None, validate_args: bool = False,
                 name: str = "monotone_elementwise", parameters: dict | None = None):
        parameters = dict(locals()) if parameters is None else parameters
        with tf.name_scope(name) as name:
            self._params = tensor_util.convert_nonref_to_tensor(
                params, dtype_hint=tf.float32, name="params")
            transform.check_params(self._params)
            self._transform = transform
            self._root_solver = root_solver or RootSolver()
            super().__init__(forward_min_event_ndims=0, validate_args=validate_args,
                             parameters=parameters, dtype=self._params.dtype, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return dict(params=parameter_properties.ParameterProperties(event_ndims=1))

    @property
    def params(self) -> tf.Tensor:
        return self._params

    @property
    def transform(self) -> MonotoneTransform:
        return self._transform

    @property
    def root_solver(self) -> RootSolver:
        return self._root_solver

    def _assert_finite(self, t, name):
        if not self.validate_args:
            return t
        return tf.debugging.assert_all_finite(t, f"{self.name}: `{name}` must be finite.")

    def _inverse(self, y):
        return self._transform(self._assert_finite(y, "y"), tf.convert_to_tensor(self._params))[0]

    def _inverse_log_det_jacobian(self, y):
        return self._transform(self._assert_finite(y, "y"), tf.convert_to_tensor(self._params))[1]

    def _forward(self, x):
        return self.solve_forward(x).y

    def solve_forward(self, x) -> RootResult:
        """The noise -> data map as a `RootResult` (solution, residual, convergence)."""
        x = self._assert_finite(tf.convert_to_tensor(x, dtype=self.dtype, name="x"), "x")
        params = tf.convert_to_tensor(self._params)
        return self._root_solver.invert(self._transform, x, params)

    def _is_increasing(self):
        return True


class DeepSigmoidal(MonotoneElementwise):
    """Deep sigmoidal flow (DSF), an increasing scalar bijection of R onto R.

    Each of `layers` layers maps a scalar `h` to

      h' = logit(sum_j w_j sigmoid(a_j h + b_j)),   j = 1..d,

    with `a_j = softplus(.) + 1e-3 > 0`, `b_j` free and `w = softmax(.)`, read
    from the last axis of `params` as `[a (d), b (d), w (d)]` per layer
    (`3 d` pseudo-parameters a layer), plus `linear_slope * y`. The logit and
    the log-derivative are computed in log space, so neither saturates: the
    tails are linear and the map is onto R (see `DeepSigmoidalTransform`).

    `inverse` (data -> noise) is this map; `forward` (noise -> data) solves it
    numerically with `root_solver`. As a `bijector_fn` result:

    ```python
    made = tfb.AutoregressiveNetwork(params=DeepSigmoidal.num_params(8), event_shape=[2])
    maf = tfb.MaskedAutoregressiveFlow(
        bijector_fn=lambda y, **kw: DeepSigmoidal(made(y, **kw), units=8))
    ```

    Args:
      params: float `Tensor`, pseudo-parameters on the last axis; the leading
        axes are the batch shape.
      units: d, the sigmoids per layer.
      layers: the layers composed.
      linear_slope: slope `delta >= 0` of a linear term added to the output,
        `x = DSF(y) + delta * y` (default 0.1); it keeps the inverse well
        conditioned where sharp sigmoids leave plateaus. 0 is the paper's DSF.
      root_solver: `RootSolver` for `forward`; default `RootSolver()`.
      validate_args: check inputs are finite.
      name: name of the bijector.

    #### References

    [1]: Chin-Wei Huang, David Krueger, Alexandre Lacoste and Aaron Courville.
         Neural Autoregressive Flows. In _ICML_, 2018.
         https://arxiv.org/abs/1804.00779
    """

    transform_class = DeepSigmoidalTransform

    def __init__(self, params, units: int, layers: int = 1,
                 linear_slope: float = LINEAR_SLOPE, root_solver: RootSolver | None = None,
                 validate_args: bool = False, name: str = "deep_sigmoidal"):
        super().__init__(params, self.transform_class(units, layers, linear_slope),
                         root_solver=root_solver, validate_args=validate_args, name=name,
                         parameters=dict(locals()))

    @classmethod
    def num_params(cls, units: int, layers: int = 1) -> int:
        """Pseudo-parameters for `units` sigmoids in each of `layers` layers."""
        return cls.transform_class(units, layers).num_params

    @property
    def units(self) -> int:
        return self.transform.units

    @property
    def layers(self) -> int:
        return self.transform.layers


class DeepDenseSigmoidal(DeepSigmoidal):
    """Deep dense sigmoidal flow (DDSF), an increasing scalar bijection of R onto R.

    Layers of widths `1 -> d -> ... -> d -> 1`; a layer from width n to width m
    with d sigmoids computes

      c_j = a_j * sum_i u_ji h_i + b_j,
      h'_k = logit(sum_j w_kj sigmoid(c_j)),

    with `a = softplus(.) + 1e-3`, and `u` (d x n) and `w` (m x d) positive with
    rows summing to one (softmax). Pseudo-parameters per layer, in order:
    `u` (only when n > 1), `a`, `b`, `w`. The Jacobian of each layer is kept in
    log space and chained by log-matrix-vector products (logsumexp of sums),
    never by multiplying raw derivatives. With `layers=1` this is
    `DeepSigmoidal` with one layer.

    Args:
      params: float `Tensor`, pseudo-parameters on the last axis.
      units: d.
      layers: number of dense layers (default 2).
      linear_slope: slope `delta >= 0` of a linear term added to the output
        (default 0.1), as in `DeepSigmoidal`. 0 is the paper's DDSF.
      root_solver: `RootSolver` for `forward`.
      validate_args: check inputs are finite.
      name: name of the bijector.

    #### References

    [1]: Chin-Wei Huang, David Krueger, Alexandre Lacoste and Aaron Courville.
         Neural Autoregressive Flows. In _ICML_, 2018.
         https://arxiv.org/abs/1804.00779
    """

    transform_class = DeepDenseSigmoidalTransform

    def __init__(self, params, units: int, layers: int = 2,
                 linear_slope: float = LINEAR_SLOPE, root_solver: RootSolver | None = None,
                 validate_args: bool = False, name: str = "deep_dense_sigmoidal"):
        super().__init__(params, units, layers, linear_slope, root_solver, validate_args, name)

    @classmethod
    def num_params(cls, units: int, layers: int = 2) -> int:
        return super().num_params(units, layers)
