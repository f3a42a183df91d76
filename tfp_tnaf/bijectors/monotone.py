"""Scalar increasing bijections of R onto R built from unconstrained pseudo-parameters.

Direction (as `tfb.MaskedAutoregressiveFlow`): `inverse` (data -> noise) is the
analytic map with its log-derivative computed in log space; `forward`
(noise -> data) is the numerical inverse by `tfp_tnaf.roots.RootSolver`.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import parameter_properties, tensor_util

from tfp_tnaf.roots import RootResult, RootSolver

tfb = tfp.bijectors

__all__ = [
    "DeepDenseSigmoidal",
    "DeepSigmoidal",
    "MonotoneElementwise",
    "monotone_network",
    "sigmoidal_layers",
]

# Floor on the sigmoid slopes a_j: keeps every layer strictly increasing even
# when the conditioner drives softplus(.) to underflow.
MIN_SLOPE = 1e-3
# Default slope of the linear term added to the sigmoidal flows (see
# `sigmoidal_layers`): it bounds the derivative below, so the numerical inverse
# stays well conditioned far from the data.
LINEAR_SLOPE = 0.1


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {value!r}.")
    return int(value)


def check_linear_slope(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"`linear_slope` must be a non-negative number; got {value!r}.")
    return float(value)


def sigmoidal_layer_sizes(hidden_units: int, num_layers: int, dense: bool) -> list[int]:
    """Widths of the values passed between layers: [1, d, ..., d, 1] or all ones."""
    hidden_units = check_positive_int(hidden_units, "hidden_units")
    num_layers = check_positive_int(num_layers, "num_layers")
    inner = hidden_units if dense else 1
    return [1] + [inner] * (num_layers - 1) + [1]


def _layer_num_params(n_in: int, n_out: int, hidden_units: int) -> int:
    # u (mixing of the inputs, absent for one input), a, b, w.
    mixing = hidden_units * n_in if n_in > 1 else 0
    return mixing + 2 * hidden_units + n_out * hidden_units


def sigmoidal_num_params(hidden_units: int, num_layers: int, dense: bool) -> int:
    sizes = sigmoidal_layer_sizes(hidden_units, num_layers, dense)
    return sum(_layer_num_params(n, m, hidden_units) for n, m in pairwise(sizes))


def _logsumexp_matvec(log_matrix, log_vector):
    """log(exp(log_matrix) @ exp(log_vector)) over the last axis."""
    return tf.reduce_logsumexp(log_matrix + log_vector[..., tf.newaxis, :], axis=-1)


def sigmoidal_layers(x: tf.Tensor, params: tf.Tensor, hidden_units: int,
                     num_layers: int, dense: bool,
                     linear_slope: float = LINEAR_SLOPE) -> tuple[tf.Tensor, tf.Tensor]:
    """Deep (dense) sigmoidal flow: returns `z` and `log dz/dx`, elementwise.

    Each layer maps `h` (width n) to `h'` (width m) through d sigmoid units:

      c_j = a_j * sum_i u_ji h_i + b_j,
      s_k = sum_j w_kj sigmoid(c_j),   h'_k = logit(s_k),

    with `a = softplus(.) + MIN_SLOPE`, and `u`, `w` row-wise softmax. `logit(s)`
    is `log s - log(1 - s)`, both logsumexps (`1 - s = sum_j w_kj sigmoid(-c_j)`),
    so `s` never saturates. The log-derivative is chained as a log-space
    matrix-vector product; each layer's factor
    `w_kj s_j (1 - s_j) / (s_k (1 - s_k))` is written as `alpha_kj beta_kj / w_kj`
    with `alpha_k = softmax_j(log w_kj + log sigmoid(c_j))` and
    `beta_k = softmax_j(log w_kj + log sigmoid(-c_j))`, so no large log-values
    cancel in the tails. The result is `z = h_L + linear_slope * x`, with
    `log dz/dx = logaddexp(log dh_L/dx, log linear_slope)`: in the plateaus
    between sharp sigmoids `dh_L/dx` can be ~1e-5, and float32 `z` then no
    longer determines `x`; the linear term keeps `dz/dx >= linear_slope`.
    `linear_slope=0` gives the flows of Huang et al. exactly.

    Args:
      x: values, shape `S`.
      params: pseudo-parameters, shape `S + [sigmoidal_num_params(...)]`
        (broadcasting with `x`).
      hidden_units: d.
      num_layers: number of layers.
      dense: DDSF (widths 1 -> d -> ... -> d -> 1) or DSF (widths all 1).
      linear_slope: slope of the added linear term, >= 0.
    """
    sizes = sigmoidal_layer_sizes(hidden_units, num_layers, dense)
    d = hidden_units
    shape = tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(params)[:-1])
    h = tf.broadcast_to(x, shape)[..., tf.newaxis]
    params = tf.broadcast_to(params, tf.concat([shape, tf.shape(params)[-1:]], 0))
    log_dh = tf.zeros_like(h)
    layer_sizes = [_layer_num_params(n, m, d) for n, m in pairwise(sizes)]
    for (n, m), layer_params in zip(pairwise(sizes), tf.split(params, layer_sizes, axis=-1),
                                    strict=True):
        mixing = d * n if n > 1 else 0
        u_raw, a_raw, b, w_raw = tf.split(layer_params, [mixing, d, d, m * d], axis=-1)
        if n > 1:
            u_raw = tf.reshape(u_raw, tf.concat([shape, [d, n]], 0))
            pre = tf.linalg.matvec(tf.nn.softmax(u_raw, axis=-1), h)
            log_dpre = _logsumexp_matvec(tf.nn.log_softmax(u_raw, axis=-1), log_dh)
        else:
            pre, log_dpre = h, log_dh
        a = tf.math.softplus(a_raw) + MIN_SLOPE
        log_w = tf.nn.log_softmax(tf.reshape(w_raw, tf.concat([shape, [m, d]], 0)), axis=-1)
        c = a * pre + b
        log_w_sig = log_w + tf.math.log_sigmoid(c)[..., tf.newaxis, :]
        log_w_sig_neg = log_w + tf.math.log_sigmoid(-c)[..., tf.newaxis, :]
        h = (tf.reduce_logsumexp(log_w_sig, axis=-1)
             - tf.reduce_logsumexp(log_w_sig_neg, axis=-1))
        # dh'/dc_j = w_j s_j (1 - s_j) / (s (1 - s)) = alpha_j beta_j / w_j, with
        # alpha = softmax(log w + log sigmoid(c)), beta = softmax(log w + log
        # sigmoid(-c)): in the tails log sigmoid(-c) ~ -c is large, and this form
        # never subtracts two such numbers (float32 lost 0.1 nats that way).
        log_ratio = (tf.nn.log_softmax(log_w_sig, axis=-1)
                     + tf.nn.log_softmax(log_w_sig_neg, axis=-1) - log_w)
        log_dh = _logsumexp_matvec(log_ratio, log_dpre + tf.math.log(a))
    h, log_dh = h[..., 0], log_dh[..., 0]
    if linear_slope == 0:
        return h, log_dh
    log_slope = tf.constant(np.log(linear_slope), h.dtype)
    return (h + linear_slope * tf.broadcast_to(x, shape),
            log_add_exp(log_dh, log_slope))


def log_add_exp(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """log(exp(a) + exp(b)), elementwise, without overflow."""
    return tf.reduce_logsumexp(tf.stack([a + tf.zeros_like(b), b + tf.zeros_like(a)]), axis=0)


def log_sech2(u):
    """log(1 - tanh(u)^2), stable for large |u|."""
    a = tf.abs(u)
    return 2.0 * (np.log(2.0) - a - tf.math.softplus(-2.0 * a))


def shared_matvec(matrix, vectors):
    """`matrix @ v` for every `v` on the last axis of `vectors`: one 2-D matmul."""
    flat = tf.reshape(vectors, [-1, tf.shape(vectors)[-1]])
    product = tf.matmul(flat, matrix, transpose_b=True)
    return tf.reshape(product, tf.concat([tf.shape(vectors)[:-1], tf.shape(matrix)[:1]], 0))


def _log_matvec_exp(log_matrix, log_vector):
    """log(exp(log_matrix) @ exp(log_vector)) for one shared matrix, as a matmul.

    Both factors are shifted by their maxima before exponentiating (the
    log-sum-exp trick), so this is a dense matmul rather than an
    `[..., H, H]` logsumexp. A sum that still underflows is floored at the
    smallest normal number: that only happens where the term is negligible
    next to the linear skip it is added to.
    """
    row_max = tf.reduce_max(log_matrix, axis=-1)
    vector_max = tf.stop_gradient(tf.reduce_max(log_vector, axis=-1, keepdims=True))
    product = shared_matvec(tf.exp(log_matrix - row_max[:, tf.newaxis]),
                            tf.exp(log_vector - vector_max))
    tiny = np.finfo(log_vector.dtype.as_numpy_dtype).tiny
    return tf.math.log(tf.maximum(product, tiny)) + row_max + vector_max


def monotone_network_num_params(hidden_units: int) -> int:
    """Per-element pseudo-parameters of `monotone_network`: w1, b1, b2, w3, b3, c."""
    return 4 * check_positive_int(hidden_units, "hidden_units") + 2


def monotone_network(x: tf.Tensor, params: tf.Tensor, log_mixing: tf.Tensor,
                     linear_slope: float = LINEAR_SLOPE) -> tuple[tf.Tensor, tf.Tensor]:
    """Increasing network 1 -> H -> H -> 1 of R onto R: returns `z` and `log dz/dx`.

      h1 = tanh(exp(w1) x + b1),        h2 = tanh(exp(M) h1 + b2),
      z  = exp(w3) . h2 + b3 + (softplus(c) + linear_slope) x,

    with the per-element `w1, b1, b2, w3` (H each), `b3`, `c` read from the last
    axis of `params` and the H x H log-weights `M = log_mixing` shared by all
    elements (T-NAF's amortisation: a hypernetwork emits the per-element part).
    The tanh part is bounded; the positive linear skip makes the map onto R and
    bounds its slope below. The log-derivative is chained in log space
    (logsumexp of sums), with `log(1 - tanh(u)^2)` evaluated stably.
    """
    hidden = tf.compat.dimension_value(log_mixing.shape[-1])
    shape = tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(params)[:-1])
    x = tf.broadcast_to(x, shape)
    w1, b1, b2, w3, b3_c = tf.split(params, [hidden] * 4 + [2], axis=-1)
    b3, c = tf.unstack(b3_c, axis=-1)
    u1 = tf.exp(w1) * x[..., tf.newaxis] + b1
    log_dh1 = w1 + log_sech2(u1)
    u2 = shared_matvec(tf.exp(log_mixing), tf.tanh(u1)) + b2
    log_dh2 = _log_matvec_exp(log_mixing, log_dh1) + log_sech2(u2)
    skip = tf.math.softplus(c) + linear_slope
    z = tf.reduce_sum(tf.exp(w3) * tf.tanh(u2), axis=-1) + b3 + skip * x
    log_dz = log_add_exp(tf.reduce_logsumexp(w3 + log_dh2, axis=-1), tf.math.log(skip))
    return z, log_dz


class MonotoneElementwise(tfb.Bijector):
    """Base class: an increasing scalar bijection of R onto R set by pseudo-parameters.

    Subclasses implement `_transform(y, params) -> (z, log dz/dy)`, the analytic
    data -> noise map. `inverse` is that map, `forward` its numerical inverse by
    `root_solver`, with gradients from the implicit function theorem.
    """

    def __init__(self, params, root_solver: RootSolver | None = None,
                 validate_args: bool = False, parameters=None, name: str | None = None):
        with tf.name_scope(name) as name:
            self._params = tensor_util.convert_nonref_to_tensor(
                params, dtype_hint=tf.float32, name="params")
            if self._params.shape.rank is not None and self._params.shape.rank < 1:
                raise ValueError("`params` must have at least one axis (the last one holds "
                                 f"the pseudo-parameters); got shape {self._params.shape}.")
            self._root_solver = root_solver or RootSolver()
            super().__init__(
                forward_min_event_ndims=0,
                validate_args=validate_args,
                parameters=parameters,
                dtype=self._params.dtype,
                name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return dict(params=parameter_properties.ParameterProperties(event_ndims=1))

    @property
    def params(self) -> tf.Tensor:
        return self._params

    @property
    def root_solver(self) -> RootSolver:
        return self._root_solver

    def _check_num_params(self, expected: int):
        given = tf.compat.dimension_value(self._params.shape[-1])
        if given is not None and given != expected:
            raise ValueError(f"`params` must have {expected} pseudo-parameters on its last "
                             f"axis for these sizes; got {given}.")

    def _transform(self, y, params):
        raise NotImplementedError

    def _assert_finite(self, t, name):
        if not self.validate_args:
            return t
        return tf.debugging.assert_all_finite(t, f"{self.name}: `{name}` must be finite.")

    def transform(self, y) -> tuple[tf.Tensor, tf.Tensor]:
        """The data -> noise map and its log-derivative, `(z, log dz/dy)`."""
        y = tf.convert_to_tensor(y, dtype=self.dtype, name="y")
        return self._transform(y, tf.convert_to_tensor(self._params))

    def _inverse(self, y):
        return self._transform(self._assert_finite(y, "y"), tf.convert_to_tensor(self._params))[0]

    def _inverse_log_det_jacobian(self, y):
        return self._transform(self._assert_finite(y, "y"), tf.convert_to_tensor(self._params))[1]

    def _forward(self, x):
        return self.solve_forward(x).x

    def solve_forward(self, x) -> RootResult:
        """The noise -> data map as a `RootResult` (solution, residual, convergence)."""
        x = self._assert_finite(tf.convert_to_tensor(x, dtype=self.dtype, name="x"), "x")
        params = tf.convert_to_tensor(self._params)
        x = tf.broadcast_to(x, tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(params)[:-1]))
        return self._root_solver(lambda y, p: self._transform(y, p), x, params)

    def _is_increasing(self):
        return True


class _Sigmoidal(MonotoneElementwise):
    """Shared constructor of the sigmoidal flows."""

    _dense = False

    def __init__(self, params, hidden_units, num_layers, linear_slope, root_solver,
                 validate_args, parameters, name):
        self._linear_slope = check_linear_slope(linear_slope)
        self._hidden_units = check_positive_int(hidden_units, "hidden_units")
        self._num_layers = check_positive_int(num_layers, "num_layers")
        super().__init__(params, root_solver=root_solver, validate_args=validate_args,
                         parameters=parameters, name=name)
        self._check_num_params(self.num_params(hidden_units, num_layers))

    @classmethod
    def num_params(cls, hidden_units: int, num_layers: int = 1) -> int:
        """Number of pseudo-parameters for `hidden_units` sigmoids in `num_layers` layers."""
        return sigmoidal_num_params(hidden_units, num_layers, cls._dense)

    @property
    def hidden_units(self) -> int:
        return self._hidden_units

    @property
    def num_layers(self) -> int:
        return self._num_layers

    def _transform(self, y, params):
        return sigmoidal_layers(y, params, self._hidden_units, self._num_layers, self._dense,
                                self._linear_slope)


class DeepSigmoidal(_Sigmoidal):
    """Deep sigmoidal flow (DSF), an increasing scalar bijection of R onto R.

    Each of `num_layers` layers maps a scalar `h` to

      h' = logit(sum_j w_j sigmoid(a_j h + b_j)),   j = 1..d,

    with `a_j = softplus(.) + 1e-3 > 0`, `b_j` free and `w = softmax(.)`, read
    from the last axis of `params` as `[a (d), b (d), w (d)]` per layer
    (`3 d` pseudo-parameters a layer). The logit is evaluated as
    `log s - log(1 - s)` with both terms logsumexps, and

      log dh'/dh = logsumexp_j[log a_j + log alpha_j + log beta_j - log w_j],

    with `alpha = softmax(log w + log sigmoid(c))` and
    `beta = softmax(log w + log sigmoid(-c))` (this equals
    `w_j sigmoid(c_j) sigmoid(-c_j) / (s (1 - s))` summed with `a_j`, without
    subtracting the large logs of the tails), so neither `s` nor the
    derivative saturates: the tails are linear with
    slope `min_j a_j`, and the map is onto R.

    `inverse` (data -> noise) is this map; `forward` (noise -> data) solves it
    numerically with `root_solver`. As a `bijector_fn` result:

    ```python
    made = tfb.AutoregressiveNetwork(params=DeepSigmoidal.num_params(8), event_shape=[2])
    maf = tfb.MaskedAutoregressiveFlow(
        bijector_fn=lambda y, **kw: DeepSigmoidal(made(y, **kw), hidden_units=8))
    ```

    Args:
      params: float `Tensor`, pseudo-parameters on the last axis; the leading
        axes are the batch shape.
      hidden_units: d, the sigmoids per layer.
      num_layers: the layers composed.
      linear_slope: slope `delta >= 0` of a linear term added to the output,
        `z = DSF(y) + delta * y` (default 0.1); it keeps the inverse well
        conditioned where sharp sigmoids leave plateaus. 0 is the paper's DSF.
      root_solver: `RootSolver` for `forward`; default `RootSolver()`.
      validate_args: check inputs are finite.
      name: name of the bijector.

    #### References

    [1]: Chin-Wei Huang, David Krueger, Alexandre Lacoste and Aaron Courville.
         Neural Autoregressive Flows. In _ICML_, 2018.
         https://arxiv.org/abs/1804.00779
    """

    def __init__(self, params, hidden_units: int, num_layers: int = 1,
                 linear_slope: float = LINEAR_SLOPE, root_solver: RootSolver | None = None,
                 validate_args: bool = False, name: str = "deep_sigmoidal"):
        super().__init__(params, hidden_units, num_layers, linear_slope, root_solver,
                         validate_args, dict(locals()), name)


class DeepDenseSigmoidal(_Sigmoidal):
    """Deep dense sigmoidal flow (DDSF), an increasing scalar bijection of R onto R.

    Layers of widths `1 -> d -> ... -> d -> 1`; a layer from width n to width m
    with d sigmoids computes

      c_j = a_j * sum_i u_ji h_i + b_j,
      h'_k = logit(sum_j w_kj sigmoid(c_j)),

    with `a = softplus(.) + 1e-3`, and `u` (d x n) and `w` (m x d) positive with
    rows summing to one (softmax). Pseudo-parameters per layer, in order:
    `u` (only when n > 1), `a`, `b`, `w`. The Jacobian of each layer is kept in
    log space and chained by log-matrix-vector products (logsumexp of sums),
    never by multiplying raw derivatives. With `num_layers=1` this is
    `DeepSigmoidal` with one layer.

    Args:
      params: float `Tensor`, pseudo-parameters on the last axis.
      hidden_units: d.
      num_layers: number of dense layers (default 2).
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

    _dense = True

    def __init__(self, params, hidden_units: int, num_layers: int = 2,
                 linear_slope: float = LINEAR_SLOPE, root_solver: RootSolver | None = None,
                 validate_args: bool = False, name: str = "deep_dense_sigmoidal"):
        super().__init__(params, hidden_units, num_layers, linear_slope, root_solver,
                         validate_args, dict(locals()), name)

    @classmethod
    def num_params(cls, hidden_units: int, num_layers: int = 2) -> int:
        return super().num_params(hidden_units, num_layers)
