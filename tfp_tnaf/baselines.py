"""TFP's own flows as baselines: MAF and RealNVP, built complete at construction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf import checks
from tfp_tnaf.nn.made import build_made

tfb = tfp.bijectors

__all__ = ["masked_autoregressive_flow", "real_nvp", "set_batch_norm_statistics"]

# The moving averages follow about the last ten batches: with 0.99 they lagged
# the weights at a learning rate of 1e-3, and the validation and test
# log-likelihoods (on the averages) came out 5-15 nats lower on BSDS300.
_BATCH_NORM_MOMENTUM = 0.9
_BATCH_NORM_EPSILON = 1e-5


def _moving_average_weight(layer, name, size, initializer):
    """A non-trainable statistic of `layer`, averaged across replicas as Keras' own."""
    return layer.add_weight(name, [size], initializer=initializer, trainable=False,
                            synchronization=tf.VariableSynchronization.ON_READ,
                            aggregation=tf.VariableAggregation.MEAN)


class _BatchNormalization(tf_keras.layers.Layer):
    """MAF's batch normalisation, `u -> x = exp(log_gamma) (u - m) / sqrt(v + eps) + beta`.

    A Keras layer so that Keras says which phase it is in: inside `fit`'s
    training step (`training=True`) `m` and `v` are the batch's mean and
    variance, and `call(..., update=True)` moves the moving averages toward
    them; everywhere else (`evaluate`, validation, `predict`, any call outside
    Keras) `m` and `v` are the moving averages, so the map is a fixed affine
    bijection of each point. Any rank: the statistics are over all batch axes.

    Args:
      event_size: D.
      momentum: of the moving averages.
      epsilon: added to the variance.
      dtype: float dtype of the weights and the computation.
    """

    def __init__(self, event_size: int, momentum: float, epsilon: float, dtype: Any):
        super().__init__(dtype=dtype, name="batch_normalization")
        self.momentum, self.epsilon = momentum, epsilon
        self.log_gamma = self.add_weight("log_gamma", [event_size], initializer="zeros")
        self.beta = self.add_weight("beta", [event_size], initializer="zeros")
        self.moving_mean = _moving_average_weight(self, "moving_mean", event_size, "zeros")
        self.moving_variance = _moving_average_weight(self, "moving_variance", event_size,
                                                      "ones")

    def _log_scale(self, variance: tf.Tensor) -> tf.Tensor:
        return self.log_gamma - 0.5 * tf.math.log(variance + self.epsilon)

    def call(self, u: tf.Tensor, update: bool = False,
             training: bool | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """`u` -> `(x, log |det dx/du|)`, the log-det in `u`'s batch shape.

        Raises:
          ValueError: if `training` is a tensor of unknown value (a symbolic
            learning phase): the phase decides which statistics exist.
        """
        if tf.is_tensor(training):
            value = tf.get_static_value(training)
            if value is None:
                raise ValueError("MAF's batch normalisation needs a `training` phase known "
                                 f"when the graph is built; got {training!r}.")
            training = bool(value)
        mean, variance = self.moving_mean, self.moving_variance
        if training:
            mean, variance = tf.nn.moments(u, axes=list(range(u.shape.rank - 1)))
            if update:
                for average, value in ((self.moving_mean, mean),
                                       (self.moving_variance, variance)):
                    average.assign_sub((1.0 - self.momentum) * (average - value))
        log_scale = self._log_scale(variance)
        x = (u - mean) * tf.exp(log_scale) + self.beta
        return x, tf.broadcast_to(tf.reduce_sum(log_scale), tf.shape(u)[:-1])

    def undo(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`x` -> `(u, log |det du/dx|)` with the moving averages (the sampling direction)."""
        log_scale = self._log_scale(self.moving_variance)
        u = (x - self.beta) * tf.exp(-log_scale) + self.moving_mean
        return u, tf.broadcast_to(-tf.reduce_sum(log_scale), tf.shape(x)[:-1])


class _MaskedAutoregressiveFlow(tfb.MaskedAutoregressiveFlow):
    """One MAF layer: TFP's MAF over a MADE it owns, a bounded log-scale, then batch norm.

    Density direction (`inverse`): `u = (y - shift(y)) exp(-log_scale(y))` with
    `log_scale = bound * tanh(raw / bound)`, then `x = norm(u)` (MAF's order);
    `forward` undoes the norm, then runs TFP's sequential pass. Keyword
    arguments (`conditional_input=`) go to the MADE. Still a
    `tfb.MaskedAutoregressiveFlow`, so code that finds MAF layers by type (to
    invert them into an IAF, say) finds these.
    """

    def __init__(self, made, log_scale_bound: float, norm: _BatchNormalization | None,
                 name: str):
        self._made, self._bound, self._norm = made, log_scale_bound, norm
        super().__init__(bijector_fn=self._affine, name=name)

    # Its own weights make it a map of its own (see `MonotoneAutoregressive`).
    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def _affine(self, y, **kwargs) -> tfb.Bijector:
        """MADE(y) as `Shift(shift)(Scale(exp(log_scale)))`, the log-scale bounded smoothly."""
        shift, raw = tf.unstack(self._made(y, **kwargs), num=2, axis=-1)
        bound = tf.constant(self._bound, raw.dtype)
        return tfb.Shift(shift)(tfb.Scale(log_scale=bound * tf.tanh(raw / bound)))

    def _inverse_pass(self, y, update: bool, **kwargs):
        affine = self._affine(y, **kwargs)  # one MADE pass for the point and its log-det
        x, log_det = affine.inverse(y), affine.inverse_log_det_jacobian(y, event_ndims=1)
        if self._norm is not None:
            x, norm_log_det = self._norm(x, update=update)
            log_det += norm_log_det
        return x, log_det

    def _inverse(self, y, **kwargs):
        x, log_det = self._inverse_pass(y, update=True, **kwargs)
        # Leave the log-det in TFP's cache: `log_prob` then runs the MADE once.
        self._cache.inverse_attributes(y, **kwargs)["ildj"] = log_det
        return x

    def _inverse_log_det_jacobian(self, y, **kwargs):
        return self._inverse_pass(y, update=False, **kwargs)[1]

    def _forward(self, x, **kwargs):
        if self._norm is not None:
            x = self._norm.undo(x)[0]
        return super()._forward(x, **kwargs)

    def _forward_log_det_jacobian(self, x, **kwargs):
        log_det = 0.0
        if self._norm is not None:
            x, log_det = self._norm.undo(x)
        y = super()._forward(x, **kwargs)
        return log_det + self._affine(y, **kwargs).forward_log_det_jacobian(x, event_ndims=1)


def set_batch_norm_statistics(flow: tfb.Bijector, points: Any,
                              batch_size: int = 65536) -> int:
    """Sets every MAF batch normalisation's averages to the statistics of `points`.

    The MAF recipe for evaluation: after training, each batch normalisation
    takes the mean and variance of its input over the whole training set,
    layer by layer in the density direction (each layer sees the previous
    layers' final statistics), instead of the moving averages of the last
    batches, which lag the weights and can leave a variance too small for
    part of the data (one Two Moons test point then scored -1.7e8). Layers
    without batch normalisation pass the points on; a flow without any is
    left alone, without a pass over `points`. Unconditional flows.

    Args:
      flow: a bijector or a `tfb.Chain` of them, as `make_flow` builds.
      points: `[N, D]` data points (the training set).
      batch_size: points per pass.

    Returns:
      How many batch normalisations were set.
    """
    layers = getattr(flow, "bijectors", [flow])  # make_flow's Chain is a _Chain
    normed = [isinstance(layer, _MaskedAutoregressiveFlow) and layer._norm is not None
              for layer in layers]
    y = np.asarray(points)
    # Chain.inverse applies bijectors[0] first; past the last normalisation, nothing to set.
    last = max((i for i, norm in enumerate(normed) if norm), default=-1)
    for layer, norm in zip(layers[:last + 1], normed, strict=False):
        if norm:
            u = _batched(lambda b, layer=layer: layer._affine(b).inverse(b), y, batch_size)
            layer._norm.moving_mean.assign(u.mean(0).astype(u.dtype))
            layer._norm.moving_variance.assign(u.var(0).astype(u.dtype))
            y = layer._norm(tf.constant(u))[0].numpy()  # the layer's output, from u
        else:
            y = _batched(layer.inverse, y, batch_size)
    return sum(normed)


def _batched(fn, points: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([fn(tf.constant(points[i:i + batch_size])).numpy()
                           for i in range(0, len(points), batch_size)])


def masked_autoregressive_flow(event_size: int, hidden_units: Sequence[int] = (64, 64),
                               conditional_event_size: int | None = None,
                               dtype: Any = tf.float32,
                               name: str = "masked_autoregressive_flow", *,
                               batch_norm: bool = True,
                               log_scale_bound: float = 3.0) -> tfb.Bijector:
    """One layer of MAF (Papamakarios et al., 2017) from TFP's parts, its variables made now.

    The recipe of the MAF paper, which keeps a stack of these trainable: TFP's
    MADE (`tfb.AutoregressiveNetwork`) gives the shift and the log-scale of
    `tfb.MaskedAutoregressiveFlow`, the log-scale bounded smoothly by
    `log_scale_bound * tanh(raw / log_scale_bound)`, and batch normalisation
    follows it in the density direction (`inverse`). The batch normalisation
    uses the batch's statistics in Keras' training phase (`FlowModel.fit`'s
    training step, which calls the model with `training=True`) and its moving
    averages otherwise; outside that step the layer is an exact
    affine-autoregressive bijection of each point.

    Args:
      event_size: D.
      hidden_units: sizes of MADE's hidden layers.
      conditional_event_size: size of a context vector (`conditional_input=`,
        passed to the MADE), or None.
      dtype: float dtype.
      name: the layer's name (its key in `bijector_kwargs`).
      batch_norm: follow the MAF layer by batch normalisation.
      log_scale_bound: the log-scale lies in `(-log_scale_bound, log_scale_bound)`.

    Returns:
      The layer, a `tfb.Bijector`.
    """
    conditional = checks.optional_positive_int(conditional_event_size,
                                               "conditional_event_size") is not None
    made = tfb.AutoregressiveNetwork(
        params=2, event_shape=[event_size], hidden_units=checks.positive_ints(
            hidden_units, "hidden_units"), conditional=conditional, dtype=dtype,
        conditional_event_shape=[conditional_event_size] if conditional else None)
    build_made(made, event_size, dtype)
    norm = (_BatchNormalization(event_size, _BATCH_NORM_MOMENTUM, _BATCH_NORM_EPSILON, dtype)
            if batch_norm else None)
    return _MaskedAutoregressiveFlow(made, checks.positive(log_scale_bound, "log_scale_bound"),
                                     norm, name)


def _affine_coupling_fn(event_size: int, num_masked: int, hidden_units: Sequence[int],
                        dtype) -> tuple[tf_keras.Model, Any]:
    """A tf_keras MLP `y[:num_masked] -> (shift, log_scale)` for `tfb.RealNVP`."""
    layers = [tf_keras.layers.Dense(h, activation="relu", dtype=dtype) for h in hidden_units]
    layers.append(tf_keras.layers.Dense(2 * (event_size - num_masked), dtype=dtype,
                                        kernel_initializer="zeros"))
    # An explicit Input of `dtype`: `build` would make a float32 one, and the
    # network would then compute a float64 flow's scales in float32.
    net = tf_keras.Sequential([tf_keras.Input(shape=(num_masked,), dtype=dtype)] + layers)

    def shift_and_log_scale(y, output_units, **kwargs):
        # Keras layers want a batch axis: flatten any batch shape (none included).
        out = net(tf.reshape(y, [-1, num_masked]))
        out = tf.reshape(out, tf.concat([tf.shape(y)[:-1], [2 * output_units]], 0))
        shift, log_scale = tf.split(out, 2, axis=-1)
        return shift, tf.tanh(log_scale)  # bounded scales keep early training stable

    return net, shift_and_log_scale


class _RealNVP(tfb.RealNVP):
    """`tfb.RealNVP` that owns its Keras network, so its variables are tracked."""

    def __init__(self, event_size, hidden_units, dtype, name):
        num_masked = event_size // 2
        self._net, fn = _affine_coupling_fn(event_size, num_masked, hidden_units, dtype)
        super().__init__(num_masked=num_masked, shift_and_log_scale_fn=fn, name=name)


def real_nvp(event_size: int, hidden_units: Sequence[int] = (64, 64), dtype: Any = tf.float32,
             name: str = "real_nvp") -> tfb.Bijector:
    """One affine coupling layer of TFP's RealNVP (the first half conditions the second).

    Raises:
      ValueError: if `event_size` < 2 (there is nothing to couple).
    """
    if checks.positive_int(event_size, "event_size") < 2:
        raise ValueError(f"RealNVP needs `event_size` >= 2; got {event_size}.")
    return _RealNVP(event_size, checks.positive_ints(hidden_units, "hidden_units"), dtype, name)
