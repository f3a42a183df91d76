"""`FlowModel`: a Keras model whose loss is a distribution's negative log-likelihood."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

__all__ = ["STEPS_PER_EXECUTION", "FlowModel", "single_bijector_kwargs"]

tfd = tfp.distributions

# The package's training runs (`tfp-tnaf fit`, the equal-time benchmark) take
# this many train steps per call of Keras' compiled step (`compile(...,
# steps_per_execution=...)`); the README's "Training with Keras" gives the
# measurement behind it.
STEPS_PER_EXECUTION = 10


def single_bijector_kwargs(context: tf.Tensor) -> dict:
    """The default `conditional_kwargs`: the context for one package bijector."""
    return {"conditional_input": context}


class FlowModel(tf_keras.Model):
    """A Keras model that fits `distribution` by maximum likelihood.

    `fit(y)` minimises `-mean(distribution.log_prob(y))`; `evaluate(y)`
    returns that loss; `predict(y)` (and calling the model) gives
    `log_prob(y)`. Clip gradients through the optimizer (`global_clipnorm=`),
    compile with `jit_compile=True` for XLA, and with `steps_per_execution=10`
    (`STEPS_PER_EXECUTION`) to pay the cost of a call of Keras' compiled step
    once per ten steps: the package's callbacks count steps, not calls;
    `train_on_batch` then needs a model compiled with 1, and `fit` data of a
    known size (arrays, or `steps_per_epoch`). For conditional densities pass the
    context as Keras' `y`: `fit(points, context)`; it reaches the bijectors
    through `conditional_kwargs(context)` (and `predict((points, context))`
    scores them), by default `{"conditional_input": context}` (one package
    bijector); for a chain from `make_flow`, give e.g.
    `lambda c: {"tnaf_0": {"conditional_input": c}, ...}`.

    ```python
    model = FlowModel(tfd.TransformedDistribution(base, TransformerAutoregressive(2)))
    model.compile(tf_keras.optimizers.Adam(1e-3, global_clipnorm=0.1), steps_per_execution=10)
    model.fit(train, validation_data=(validation,), epochs=20, batch_size=200,
              callbacks=[BestWeights()])
    ```

    Under a `tf.distribute` strategy (`MirroredStrategy`,
    `MultiWorkerMirroredStrategy`), build the distribution and the model inside
    `strategy.scope()`; `fit`'s `batch_size` is the global batch, split across
    the replicas.

    Args:
      distribution: any TFP distribution with trainable variables (created
        before the first `fit`, as the package's bijectors do in `__init__`).
      conditional_kwargs: maps a context batch to `bijector_kwargs`.
      report_gradient_norm: also log each step's global gradient norm (before
        clipping; of each replica's own batch under a strategy) as
        `gradient_norm`.
    """

    def __init__(self, distribution: tfd.Distribution,
                 conditional_kwargs: Callable[[tf.Tensor], dict] | None = None,
                 report_gradient_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.distribution = distribution
        self._conditional_kwargs = conditional_kwargs or single_bijector_kwargs
        self._report_gradient_norm = report_gradient_norm
        self._loss_tracker = tf_keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self._loss_tracker]

    def fit(self, *args, **kwargs):
        """Keras' `fit`, which leaves `evaluate` and `predict` as they were.

        Keras lowers `steps_per_execution` for an epoch shorter than it, builds
        the evaluation functions (validation inside `fit`) at the lowered value,
        keeps them, and keeps the lowered value after a stop in mid-call:
        `evaluate` on more batches would then score one batch in every
        `steps_per_execution`. Here, when it is above 1, the value is restored
        and those functions are rebuilt at their next use.
        """
        value = 1 if self._steps_per_execution is None else \
            int(self._steps_per_execution.numpy())
        try:
            return super().fit(*args, **kwargs)
        finally:
            if value > 1:
                self._steps_per_execution.assign(value)
                self.test_function = self.predict_function = None

    def call(self, y: tf.Tensor, context: tf.Tensor | None = None,
             training: bool | None = None) -> tf.Tensor:
        # Keras hands `training` to the layers called inside (through its call
        # context), so dropout in a conditioner is on in `fit` and off elsewhere.
        del training
        y = tf.cast(y, self.distribution.dtype)
        if context is None:
            return self.distribution.log_prob(y)
        context = tf.cast(context, self.distribution.dtype)
        return self.distribution.log_prob(
            y, bijector_kwargs=self._conditional_kwargs(context))

    def _negative_log_likelihood(self, data, training=False):
        y, context, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
        return -tf.reduce_mean(self(y, context, training=training))

    def train_step(self, data):
        # Under a tf.distribute strategy the optimizer sums the replicas' gradients:
        # scaling each replica's mean keeps the step that of the global batch's mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss = self._negative_log_likelihood(data, training=True)
            scaled = loss / replicas
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        self._loss_tracker.update_state(loss)
        logs = {"loss": self._loss_tracker.result()}
        if self._report_gradient_norm:
            logs["gradient_norm"] = tf.linalg.global_norm(gradients) * replicas
        return logs

    def test_step(self, data):
        self._loss_tracker.update_state(self._negative_log_likelihood(data))
        return {"loss": self._loss_tracker.result()}

    def predict_step(self, data):
        y, context, _ = tf_keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(y, (tuple, list)):  # predict((points, context))
            y, context = y
        return self(y, context)
