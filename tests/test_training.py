"""Keras training (`FlowModel`, `BestWeights`, `TimeBudget`), checkpoints, evaluation and
the flow builders."""

import gc
import logging
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tests.support.flows import SMALL_BNAF, SMALL_NAF, SMALL_TNAF, normal_base
from tfp_tnaf import (
    BlockNeuralAutoregressive,
    NeuralAutoregressive,
    TransformerAutoregressive,
)
from tfp_tnaf.data import two_moons
from tfp_tnaf.models import make_distribution, make_flow
from tfp_tnaf.training import (
    BestWeights,
    DecayOverBudget,
    FlowModel,
    TimeBudget,
    cosine_factor,
    fit_steps,
    load_weights,
    mean_log_prob,
    save_weights,
)
from tfp_tnaf.training.evaluation import _COMPILED

tfb, tfd = tfp.bijectors, tfp.distributions


@pytest.fixture(scope="module")
def moons():
    return two_moons(num_train=2000, num_validation=400, num_test=400, seed=2)


def small_chain():
    """Package bijectors chained with TFP's own."""
    return tfb.Chain([
        NeuralAutoregressive(2, name="naf", **SMALL_NAF),
        tfb.Permute([1, 0]),
        tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(params=2, hidden_units=[16]),
                                     name="maf"),
        tfb.Permute([1, 0]),
        BlockNeuralAutoregressive(2, name="bnaf", **SMALL_BNAF),
    ])


def test_fit_lowers_the_loss_of_a_chain_and_evaluate_predict_agree(moons):
    distribution = tfd.TransformedDistribution(normal_base(2), small_chain())
    distribution.log_prob(moons.train[:1])  # TFP's MADE builds its variables on first use
    model = FlowModel(distribution)
    assert len(model.trainable_variables) == len(distribution.trainable_variables) > 10
    model.compile(tf_keras.optimizers.Adam(5e-3, clipnorm=1.0))
    before = model.evaluate(moons.test, batch_size=400, verbose=0)
    history = model.fit(moons.train, validation_data=(moons.validation,), epochs=5,
                        batch_size=50, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.3
    after = model.evaluate(moons.test, batch_size=400, verbose=0)
    assert after < before - 0.3
    log_prob = distribution.log_prob(tf.constant(moons.test)).numpy()
    np.testing.assert_allclose(after, -log_prob.mean(), rtol=1e-5)
    np.testing.assert_allclose(model.predict(moons.test, batch_size=128, verbose=0), log_prob,
                               rtol=1e-5, atol=1e-5)


def test_best_weights_are_restored(moons):
    tf_keras.utils.set_random_seed(4)
    model = FlowModel(make_distribution(NeuralAutoregressive(2, **SMALL_NAF), 2))
    # A large step makes the validation loss bounce, so the last epoch is rarely the best.
    model.compile(tf_keras.optimizers.Adam(0.05))
    best = BestWeights()
    history = model.fit(moons.train, validation_data=(moons.validation,), epochs=6,
                        batch_size=200, callbacks=[best], verbose=0)
    val = history.history["val_loss"]
    assert best.best_epoch == int(np.argmin(val)) and not best.stopped_non_finite
    np.testing.assert_allclose(model.evaluate(moons.validation, batch_size=400, verbose=0),
                               min(val), rtol=1e-5)


def test_non_finite_loss_stops_and_keeps_the_best_weights(moons, capsys):
    model = FlowModel(make_distribution(NeuralAutoregressive(2, **SMALL_NAF), 2))
    model.compile(tf_keras.optimizers.Adam(1e-3))
    clean = moons.train[:500]
    poisoned = np.full((100, 2), np.nan, np.float32)
    # Epoch 1 sees clean batches only; epoch 2 starts with a NaN batch.
    data = tf.data.Dataset.from_tensor_slices(np.concatenate([clean, poisoned])).batch(100)
    snapshots = []
    keep = tf_keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    best = BestWeights()
    model.fit(data.repeat(), steps_per_epoch=5, epochs=4, validation_data=(moons.validation,),
              callbacks=[keep, best], verbose=0)
    assert best.stopped_non_finite and best.best_epoch == 0
    assert "the loss is nan" in capsys.readouterr().out
    for restored, saved in zip(model.get_weights(), snapshots[0], strict=True):
        np.testing.assert_array_equal(restored, saved)
    assert np.all(np.isfinite(model.predict(moons.test, verbose=0)))


def tiny_naf_model(learning_rate):
    model = FlowModel(make_distribution(
        make_flow("naf", 2, num_flows=1, hidden_units=(8,), transform_units=4), 2))
    model.compile(tf_keras.optimizers.Adam(learning_rate))
    return model


def validation_nll(model, points):
    return -float(model.predict(points, batch_size=len(points), verbose=0).mean())


def test_time_budget_stops_before_the_epochs_and_keeps_the_best_epoch(moons):
    model = tiny_naf_model(0.02)  # a large step: the validation loss bounces
    best, budget = BestWeights(), TimeBudget(1.5)
    epochs, steps_per_epoch = 10_000, 20
    history = model.fit(moons.train, validation_data=(moons.validation,), epochs=epochs,
                        batch_size=len(moons.train) // steps_per_epoch,
                        callbacks=[best, budget], verbose=0)
    assert budget.exhausted and budget.seconds >= 1.5
    assert 0 < budget.steps == best.steps < epochs * steps_per_epoch
    # Every epoch begun is validated, the last (usually partial) one too.
    val = history.history["val_loss"]
    assert len(val) == len(history.epoch) == -(-budget.steps // steps_per_epoch) < epochs
    assert best.best_epoch == int(np.argmin(val)) and budget.trace == []
    np.testing.assert_allclose(validation_nll(model, moons.validation), min(val), rtol=1e-5)


def test_callbacks_count_steps_not_calls_with_several_steps_per_execution(moons):
    # 20 steps an epoch, 7 per call: calls of 7, 7 and 6 steps; Keras calls
    # `on_train_batch_end` once per call.
    model = tiny_naf_model(0.01)
    model.compile(tf_keras.optimizers.Adam(0.01), steps_per_execution=7)
    best, budget = BestWeights(), TimeBudget(1000.0)
    model.fit(moons.train, validation_data=(moons.validation,), epochs=3,
              batch_size=len(moons.train) // 20, callbacks=[best, budget], verbose=0)
    assert best.steps == budget.steps == int(model.optimizer.iterations) == 60
    # Under a budget that stops the run mid-epoch, the counts still agree.
    model = tiny_naf_model(0.01)
    model.compile(tf_keras.optimizers.Adam(0.01), steps_per_execution=7)
    best, budget = BestWeights(), TimeBudget(1.0)
    model.fit(moons.train, validation_data=(moons.validation,), epochs=10_000,
              batch_size=len(moons.train) // 20, callbacks=[best, budget], verbose=0)
    assert budget.exhausted and budget.steps == best.steps == int(model.optimizer.iterations)


def test_several_steps_per_execution_take_the_same_steps(moons):
    """Seven steps a call train as one a call: the same batches, the same weights."""
    weights = []
    for steps in (1, 7):
        tf_keras.utils.set_random_seed(5)
        model = tiny_naf_model(0.01)
        model.compile(tf_keras.optimizers.Adam(0.01), steps_per_execution=steps)
        model.fit(moons.train, epochs=2, batch_size=100, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for one, seven in zip(*weights, strict=True):
        np.testing.assert_allclose(seven, one, rtol=1e-5, atol=1e-6)


def test_evaluate_after_fit_scores_every_batch_with_several_steps_per_execution(moons):
    """Keras lowers `steps_per_execution` to 1 for a one-batch epoch and builds
    its validation function then; `FlowModel.fit` has it rebuilt, so a later
    `evaluate` of ten batches scores all ten, not the first alone."""
    model = tiny_naf_model(0.01)
    model.compile(tf_keras.optimizers.Adam(0.01), steps_per_execution=10)
    model.fit(moons.train[:100], validation_data=(moons.validation,), epochs=2,
              batch_size=100, verbose=0)
    points = moons.test[:400]
    expected = -np.mean(model.distribution.log_prob(points).numpy())
    assert int(model._steps_per_execution.numpy()) == 10
    np.testing.assert_allclose(model.evaluate(points, batch_size=40, verbose=0), expected,
                               rtol=1e-5)
    assert model.predict(points, batch_size=40, verbose=0).shape == (400,)


def test_time_budget_trace_competes_for_the_best_weights_mid_epoch(moons):
    model = tiny_naf_model(0.02)
    best = BestWeights()
    budget = TimeBudget(1.5, validation_data=(moons.validation,), record_every=0.25, best=best,
                        batch_size=400)
    steps_per_epoch = 1_000_000  # one epoch that the budget cuts short
    train = tf.data.Dataset.from_tensor_slices(moons.train).repeat().shuffle(2000).batch(100)
    history = model.fit(train, steps_per_epoch=steps_per_epoch, epochs=3,
                        validation_data=(moons.validation,), validation_batch_size=400,
                        callbacks=[best, budget], verbose=0)
    assert budget.exhausted and history.epoch == [0] and 0 < budget.steps < steps_per_epoch
    trace = budget.trace
    assert len(trace) >= 1 and all(np.isfinite(t["validation_nll"]) for t in trace)
    seconds, steps = ([0.0] + [t[key] for t in trace] for key in ("seconds", "steps"))
    # 0.25 s apart, and the last at the batch that exhausted the budget.
    assert np.all(np.diff(seconds[:-1]) >= 0.25) and np.all(np.diff(steps) > 0)
    assert steps[-1] == budget.steps and seconds[-1] >= 1.5
    # The best of the trace and of Keras' validation of the stopped epoch is restored.
    values = [t["validation_nll"] for t in trace] + history.history["val_loss"]
    assert best.best_value == pytest.approx(min(values), rel=1e-6)
    assert best.best_step in [t["steps"] for t in trace] + [budget.steps]
    np.testing.assert_allclose(validation_nll(model, moons.validation), min(values), rtol=1e-5)


def test_time_budget_does_not_count_validation(moons):
    model = tiny_naf_model(1e-3)
    budget = TimeBudget(1000.0)
    slow_validation = tf_keras.callbacks.LambdaCallback(
        on_test_batch_end=lambda batch, logs: time.sleep(0.5))
    start = time.perf_counter()
    history = model.fit(moons.train[:400], validation_data=(moons.validation,), epochs=3,
                        batch_size=100, validation_batch_size=400,
                        callbacks=[budget, slow_validation], verbose=0)
    wall = time.perf_counter() - start
    assert not budget.exhausted and len(history.epoch) == 3 and budget.steps == 12
    assert 0 < budget.seconds <= wall - 3 * 0.5


def test_time_budget_rejects_bad_arguments():
    for seconds in (0, -1.0, float("nan"), float("inf"), "10", True):
        with pytest.raises(ValueError, match="positive number"):
            TimeBudget(seconds)
    with pytest.raises(ValueError, match="needs `validation_data`"):
        TimeBudget(10, record_every=1)
    with pytest.raises(ValueError, match="must monitor `val_loss`"):
        TimeBudget(10, validation_data=np.zeros((4, 2)), best=BestWeights("loss"))


class _Clock(tf_keras.callbacks.Callback):
    """Reads the budget's clock (before the decay) or the learning rate and the
    clock (after it) at the start of each batch."""

    def __init__(self, budget, readings, after):
        super().__init__()
        self.budget, self.readings, self.after = budget, readings, after

    def on_train_batch_begin(self, batch, logs=None):
        if self.after:
            self.readings[-1] += (float(self.model.optimizer.learning_rate.numpy()),
                                  self.budget.elapsed())
        else:
            self.readings.append((self.budget.elapsed(),))


@pytest.mark.parametrize("floor", [0.0, 0.25])
def test_decay_over_budget_anneals_the_learning_rate_with_the_clock(moons, floor):
    model = tiny_naf_model(0.01)
    # Traced first: on a loaded machine tracing alone can take the 1-s budget.
    model.fit(moons.train[:100], epochs=1, batch_size=100, verbose=0)
    budget, readings = TimeBudget(1.0), []
    decay = DecayOverBudget(budget, floor=floor)
    model.fit(moons.train, epochs=10_000, batch_size=100, verbose=0,
              callbacks=[budget, _Clock(budget, readings, False), decay,
                         _Clock(budget, readings, True)])
    assert budget.exhausted and decay.initial_learning_rate == pytest.approx(0.01)
    assert len(readings) == budget.steps > 5

    def rate(seconds):  # the schedule, written out
        return 0.01 * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * min(seconds, 1.0))))

    # Each batch's rate is the schedule at a time the decay read between our two readings.
    for before, learning_rate, after in readings:
        assert rate(after) * (1 - 1e-6) <= learning_rate <= rate(before) * (1 + 1e-6)
    rates = [r[1] for r in readings]
    assert rates[0] > 0.9 * 0.01 and np.all(np.diff(rates) <= 1e-9)
    assert rates[-1] < rate(0.5) and min(rates) >= 0.01 * floor * (1 - 1e-6)


def test_the_cosine_factor_runs_from_1_to_the_floor_and_stays_there():
    assert cosine_factor(0.0) == 1.0 and cosine_factor(-3.0) == 1.0
    assert cosine_factor(0.5) == pytest.approx(0.5)
    assert cosine_factor(0.5, 0.2) == pytest.approx(0.6)
    assert cosine_factor(1.0, 0.2) == pytest.approx(0.2) == cosine_factor(7.0, 0.2)
    assert cosine_factor(0.25) == pytest.approx(0.5 * (1 + np.sqrt(0.5)))


def test_decay_over_budget_rejects_bad_arguments():
    with pytest.raises(TypeError, match="must be a TimeBudget"):
        DecayOverBudget(10.0)
    for floor in (1.0, -0.1, True, "0"):
        with pytest.raises(ValueError, match=r"`floor` must be a number in \[0, 1\)"):
            DecayOverBudget(TimeBudget(10), floor=floor)


def test_conditional_fit_passes_the_context(moons):
    labels = (moons.train[:, 0] > 0).astype(np.float32)[:, np.newaxis]
    flow = TransformerAutoregressive(2, conditional_event_size=1, **SMALL_TNAF)
    model = FlowModel(make_distribution(flow, 2))
    model.compile(tf_keras.optimizers.Adam(3e-3))
    history = model.fit(moons.train, labels, epochs=3, batch_size=100, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    on, off = (model.predict((moons.train[:200], c), verbose=0).mean()
               for c in (labels[:200], 1.0 - labels[:200]))
    assert on > off  # the right label explains the points better


def test_xla_fit_matches_the_graph_fit(moons):
    losses = []
    for jit in (False, True):
        tf_keras.utils.set_random_seed(5)
        model = FlowModel(make_distribution(BlockNeuralAutoregressive(2, **SMALL_BNAF), 2))
        model.compile(tf_keras.optimizers.Adam(1e-2), jit_compile=jit)
        losses.append(model.fit(moons.train, epochs=2, batch_size=200, shuffle=False,
                                verbose=0).history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_checkpoint_helpers_restore_exactly(tmp_path, moons):
    distribution = make_distribution(make_flow("tnaf", 2, **SMALL_TNAF), 2)
    for v in distribution.trainable_variables:
        v.assign_add(tf.random.normal(v.shape, stddev=0.1))
    path = save_weights(distribution, tmp_path / "ckpt")
    fresh = make_distribution(make_flow("tnaf", 2, **SMALL_TNAF), 2)
    load_weights(fresh, path)
    x = tf.constant(moons.test[:50])
    np.testing.assert_array_equal(fresh.log_prob(x).numpy(),
                                  distribution.log_prob(tf.identity(x)).numpy())
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        load_weights(fresh, tmp_path / "missing")
    with pytest.raises(AssertionError):
        load_weights(make_distribution(make_flow("naf", 2), 2), path)


def test_fit_steps_records_each_steps_loss_and_gradient_norm(moons):
    tf_keras.utils.set_random_seed(6)
    distribution = make_distribution(NeuralAutoregressive(2, **SMALL_NAF), 2)
    losses, norms = fit_steps(distribution, moons.train, num_steps=40, batch_size=64, seed=3,
                              optimizer=tf_keras.optimizers.Adam(1e-2, clipnorm=0.5))
    assert losses.shape == norms.shape == (40,)
    assert np.all(np.isfinite(losses)) and np.all(norms > 0)
    assert losses[-10:].mean() < losses[:10].mean()
    # Each loss is its own batch's, before that step's update: replaying the
    # batches on a copy of the initial weights reproduces the first one.
    tf_keras.utils.set_random_seed(6)
    fresh = make_distribution(NeuralAutoregressive(2, **SMALL_NAF), 2)
    first = moons.train[np.random.default_rng(3).integers(0, len(moons.train), 64)]
    np.testing.assert_allclose(losses[0], -fresh.log_prob(first).numpy().mean(), rtol=1e-5)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(fresh.log_prob(first))
    gradients = tape.gradient(loss, fresh.trainable_variables)
    np.testing.assert_allclose(norms[0], tf.linalg.global_norm(gradients).numpy(), rtol=1e-5)


def counting_maf(traces: list) -> tfd.Distribution:
    """A MAF whose shift-and-log-scale function notes each time it is run: once
    per trace inside a `tf.function`, once per call eagerly."""
    def shift_and_log_scale(y, **_):
        traces.append(y.shape)
        return 0.1 * y[..., ::-1], 0.05 * tf.tanh(y)
    return tfd.TransformedDistribution(normal_base(2), tfb.MaskedAutoregressiveFlow(
        shift_and_log_scale_fn=shift_and_log_scale))


def test_mean_log_prob_traces_once_whatever_the_batches(moons):
    traces = []
    distribution = counting_maf(traces)
    first = mean_log_prob(distribution, moons.test, batch_size=150)  # 150, 150, 100
    assert traces and all(shape.as_list() == [None, 2] for shape in traces)
    traced = len(traces)
    again = mean_log_prob(distribution, moons.test, batch_size=150)
    mean_log_prob(distribution, moons.train[:777], batch_size=256)  # other sizes, ragged
    mean_log_prob(distribution, moons.validation, batch_size=4096)
    assert len(traces) == traced  # no new trace
    assert again == first
    expected = distribution.log_prob(moons.test).numpy()
    np.testing.assert_allclose(first, (expected.mean(), expected.std(ddof=1) / 20), rtol=1e-5)


def test_evaluating_many_flows_raises_no_retracing_warning_and_keeps_none(moons):
    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    tf.get_logger().addHandler(handler)
    try:
        for _ in range(8):  # TensorFlow warns at 5 traces of one function in 10 calls
            mean_log_prob(counting_maf([]), moons.test, batch_size=300)
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [w for w in warnings if "retracing" in w], warnings
    gc.collect()
    assert len(_COMPILED) == 0  # the cache holds no distribution alive
