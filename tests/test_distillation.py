"""Probability density distillation: the reverse-KL estimate and the training of students."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

from tfp_tnaf import distill, distillation, make_distribution, make_flow
from tfp_tnaf.distillation import conditional_kwargs, kl_estimate, log_ratio
from tfp_tnaf.models import Recipe
from tfp_tnaf.training import FlowModel

tfb, tfd = tfp.bijectors, tfp.distributions

pytestmark = pytest.mark.xdist_group("distillation")


def gaussian(loc, scale) -> tfd.TransformedDistribution:
    """N(loc, diag(scale^2)) as a flow over a standard Normal."""
    d = len(loc)
    return make_distribution(tfb.Chain([tfb.Shift(np.float32(loc)), tfb.Scale(np.float32(scale))]),
                             d)


def iaf(event_size: int, **options) -> tfd.TransformedDistribution:
    """An IAF on TFP's MADE: one pass per layer to sample."""
    return make_distribution(tfb.Invert(make_flow("maf", event_size, batch_norm=False,
                                                  hidden_units=(16,), num_flows=2, **options)),
                             event_size)


def perturb(distribution, seed: int, scale: float = 0.3, kernels: bool = True) -> None:
    """Moves the weights off their initial values, so the flow is far from the identity.

    MADE's masks are kernel constraints, applied by optimizers only: leave its
    kernels alone (`kernels=False`; a perturbed one breaks the autoregressive structure)."""
    rng = np.random.default_rng(seed)
    for v in distribution.trainable_variables:
        if "kernel" in v.name and not kernels:
            continue
        v.assign_add(scale * rng.standard_normal(v.shape).astype(v.dtype.as_numpy_dtype))


def copy_weights(source, target) -> None:
    for s, t in zip(source.trainable_variables, target.trainable_variables, strict=True):
        t.assign(s)


def test_the_estimate_matches_the_closed_form_kl_of_two_gaussians():
    q, p = gaussian([0.5, -1.0], [2.0, 0.5]), gaussian([0.0, 0.0], [1.0, 1.0])
    exact = float(tf.reduce_sum(tfd.Normal([0.5, -1.0], [2.0, 0.5]).kl_divergence(
        tfd.Normal(0.0, 1.0))))
    mean, stderr = kl_estimate(p, q, 20_000, seed=3)
    assert exact > 1.0
    assert abs(mean - exact) < 4 * stderr + 1e-3
    assert stderr < 0.05


@pytest.mark.parametrize("kind", ["tnaf", "iaf"])
def test_the_kl_of_a_student_identical_to_the_teacher_is_zero(kind):
    """Same weights in another instance (no shared cache): every log-ratio is ~0.
    T-NAF: the student samples by root solves, the teacher scores in one pass;
    IAF: the student samples in one pass, the teacher scores sequentially.
    T-NAF runs in float64 (the registry's two layers; in float32 their two
    chained root solves leave log-ratios up to ~4e-3 on this steep perturbed
    flow), so the bound checks the solves, not float32 rounding."""
    tf_keras.utils.set_random_seed(1)
    if kind == "tnaf":
        build = lambda: make_distribution(  # noqa: E731
            make_flow("tnaf", 3, transform_units=8, dtype=tf.float64), 3, tf.float64)
        bound = 1e-9  # measured: 3e-12
    else:
        build, bound = (lambda: iaf(3)), 2e-3  # noqa: E731
    teacher, student = build(), build()
    perturb(teacher, seed=2, scale=0.3 if kind == "tnaf" else 1.0, kernels=kind == "tnaf")
    copy_weights(teacher, student)
    values = log_ratio(teacher, student, 2000, seed=[4, 5]).numpy()
    assert np.all(np.isfinite(values))
    assert np.max(np.abs(values)) < bound
    mean, stderr = kl_estimate(teacher, student, 2000)
    assert abs(mean) < 1e-4 and stderr < 1e-4


def test_the_kl_of_another_flow_is_positive_beyond_monte_carlo_error():
    tf_keras.utils.set_random_seed(2)
    teacher = make_distribution(make_flow("tnaf", 3, transform_units=8), 3)
    perturb(teacher, seed=3)
    student = iaf(3)
    mean, stderr = kl_estimate(teacher, student, 4000)
    assert mean > 5 * stderr > 0


def test_the_warm_start_stops_at_the_wall_clock_budget():
    # max_time covers the whole call: a warm start far longer than the budget
    # stops at it (and says how many steps it took), as the reverse KL does.
    tf_keras.utils.set_random_seed(4)
    teacher, student = gaussian([1.0, -2.0], [0.5, 2.0]), iaf(2)
    result = distill(teacher, student, max_time=3.0, warm_start_steps=20_000,
                     warm_start_samples=200, batch_size=32)
    assert 0 < result.warm_start_steps < 20_000
    assert result.warm_start_seconds < 3.0 + 2.0 and result.seconds < 3.0 + 3.0


def test_distillation_brings_an_iaf_onto_its_teacher():
    """A Gaussian teacher: the student's KL falls from > 1 nat to ~0, its samples
    take the teacher's moments, and the warm start runs first when asked."""
    tf_keras.utils.set_random_seed(3)
    teacher = gaussian([1.0, -2.0], [0.5, 2.0])
    student = iaf(2)
    before, _ = kl_estimate(teacher, student, 4000)
    result = distill(teacher, student, steps=400, batch_size=128, record_every=100,
                     optimizer=tf_keras.optimizers.Adam(1e-2), warm_start_steps=20,
                     warm_start_samples=500)
    after, stderr = kl_estimate(teacher, student, 4000)
    assert before > 1.0
    assert after < 0.05 and after + 4 * stderr > 0, (before, after)
    assert result.steps == 400 and result.warm_start_steps == 20 and result.skipped_steps == 0
    assert [h["step"] for h in result.history] == [100, 200, 300, 400]
    assert result.history[-1]["kl"] < result.history[0]["kl"]
    samples = student.sample(20_000, seed=[1, 2]).numpy()
    # KL < 0.05 allows a mean off by 0.3 standard deviations, and a scale off by 15%.
    np.testing.assert_allclose((samples.mean(0) - [1.0, -2.0]) / [0.5, 2.0], 0, atol=0.3)
    np.testing.assert_allclose(samples.std(0), [0.5, 2.0], rtol=0.15)


def test_the_reverse_kl_takes_the_distillation_recipes_step_by_default(monkeypatch):
    # Without an optimizer the steps are `distillation.RECIPE`'s: a recipe of
    # learning rate 0 leaves the student where it was; the real one moves it.
    teacher = gaussian([1.0, -2.0], [0.5, 2.0])
    for recipe, moves in ((Recipe(learning_rate=0.0), False), (distillation.RECIPE, True)):
        monkeypatch.setattr(distillation, "RECIPE", recipe)
        tf_keras.utils.set_random_seed(5)
        student = iaf(2)
        before = [v.numpy().copy() for v in student.trainable_variables]
        distill(teacher, student, steps=3, batch_size=32)
        after = [v.numpy() for v in student.trainable_variables]
        assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True)) == moves


def two_modes() -> tfd.Distribution:
    """A 1-D teacher with modes at -3 and 3 (scale 0.5), as event shape [1]."""
    return tfd.MixtureSameFamily(
        tfd.Categorical(probs=[0.5, 0.5]),
        tfd.Independent(tfd.Normal(loc=[[-3.0], [3.0]], scale=0.5), 1))


def test_the_forward_kl_term_covers_the_modes_the_reverse_kl_drops():
    # A Gaussian student of a two-mode teacher: the reverse KL, mode-seeking,
    # settles on one mode (scale ~0.5); with a forward-KL term of weight 10 it
    # spans both (its optimum: mean 0, scale sqrt(9 + 0.25) = 3.04).
    scales = {}
    for weight in (0.0, 10.0):
        tf_keras.utils.set_random_seed(6)
        shift, log_scale = tf.Variable([0.5]), tf.Variable([0.0])
        student = make_distribution(tfb.Chain([
            tfb.Shift(shift), tfb.Scale(log_scale=log_scale)]), 1)
        distill(two_modes(), student, steps=400, batch_size=128, forward_kl_weight=weight,
                forward_kl_samples=4000, optimizer=tf_keras.optimizers.Adam(0.05))
        scales[weight] = float(tf.exp(log_scale)[0])
        if weight:
            assert abs(float(shift[0])) < 0.5
        else:
            assert abs(float(shift[0]) - 3.0) < 0.3
    assert scales[0.0] < 0.8 and scales[10.0] > 2.5, scales


class _Clock:
    """A `time` module whose `perf_counter` moves `tick` seconds per reading."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def _rates_per_step(monkeypatch, decay: str, **budget) -> tuple[list[float], float]:
    """The learning rate in force at each step of a `distill` call (recorded as its
    schedule sets it), and the optimizer's rate afterwards; time from a `_Clock`."""
    monkeypatch.setattr(distillation, "time", _Clock(0.01))
    rates, schedule = [], distillation._schedule

    def recording(optimizer, *args):
        set_rate = schedule(optimizer, *args)

        def record(done):
            set_rate(done)
            rates.append(float(optimizer.learning_rate.numpy()))
        return record

    monkeypatch.setattr(distillation, "_schedule", recording)
    tf_keras.utils.set_random_seed(7)
    optimizer = tf_keras.optimizers.Adam(0.01)
    distill(gaussian([1.0, -2.0], [0.5, 2.0]), iaf(2), batch_size=16, optimizer=optimizer,
            decay=decay, **budget)
    return rates, float(optimizer.learning_rate.numpy())


def cosine(progress):  # the schedule, written out
    return 0.01 * 0.5 * (1 + np.cos(np.pi * np.asarray(progress)))


def test_a_cosine_decay_anneals_the_rate_over_the_steps(monkeypatch):
    # Before step k of 10 the rate is lr_0 (1 + cos(pi k / 10)) / 2; afterwards
    # the optimizer has its own rate back. "constant" leaves the rate alone.
    rates, after = _rates_per_step(monkeypatch, "cosine", steps=10, max_time=1e6)
    np.testing.assert_allclose(rates, cosine(np.arange(10) / 10), rtol=1e-6)
    assert after == pytest.approx(0.01)
    rates, _ = _rates_per_step(monkeypatch, "constant", steps=10)
    np.testing.assert_allclose(rates, 0.01, rtol=1e-6)


def test_a_cosine_decay_follows_the_clock_when_it_is_further_along(monkeypatch):
    # A clock of 0.01 s per reading and a 1-s budget: the steps run out of time
    # long before 10,000 steps, and each rate is the schedule at a time between
    # the budget's start and its end, falling to near 0 by the last step.
    rates, after = _rates_per_step(monkeypatch, "cosine", steps=10_000, max_time=1.0)
    assert 10 < len(rates) < 100
    assert rates[0] == pytest.approx(0.01, rel=1e-2) and np.all(np.diff(rates) < 0)
    assert 0 <= rates[-1] < cosine(0.9) and after == pytest.approx(0.01)


def test_distillation_needs_a_budget_and_a_trainable_student():
    teacher = gaussian([0.0], [1.0])
    with pytest.raises(ValueError, match="budget"):
        distill(teacher, iaf(1))
    for bad in (-1.0, np.inf, np.nan, "0.5"):
        with pytest.raises(ValueError, match="`forward_kl_weight` must be a finite"):
            distill(teacher, iaf(1), steps=1, forward_kl_weight=bad)
    with pytest.raises(ValueError, match="`forward_kl_samples` must be a positive integer"):
        distill(teacher, iaf(1), steps=1, forward_kl_weight=1.0, forward_kl_samples=0)
    with pytest.raises(ValueError, match="trainable"):
        distill(teacher, gaussian([0.0], [2.0]), steps=1)
    with pytest.raises(ValueError, match="`decay` must be one of 'constant', 'cosine'"):
        distill(teacher, iaf(1), steps=1, decay="linear")
    schedule = tf_keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.5)
    with pytest.raises(ValueError, match="learning rate is a number, not a schedule"):
        distill(teacher, iaf(1), steps=1, decay="cosine",
                optimizer=tf_keras.optimizers.Adam(schedule))


def test_conditional_kwargs_name_the_conditional_layers():
    student = iaf(2, conditional_event_size=1)
    c = tf.zeros([4, 1])
    assert set(conditional_kwargs(student)(c)) == {"maf_0", "maf_1"}
    layer = make_flow("naf", 2, num_flows=1, conditional_event_size=1).bijectors[0]
    single = make_distribution(tfb.Invert(layer), 2)
    assert set(conditional_kwargs(single)(c)) == {"conditional_input"}
    with pytest.raises(ValueError, match="context"):
        conditional_kwargs(iaf(2))


def conditional_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """y | c ~ N((2c, -c), 0.3^2 I), c ~ U(-1, 1)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    y = np.concatenate([2 * c, -c], axis=1) + 0.3 * rng.standard_normal((n, 2))
    return y.astype(np.float32), c


@pytest.mark.parametrize("forward_kl_weight", [0.0, 1.0])
def test_a_conditional_teacher_distils_into_a_conditional_student(forward_kl_weight):
    """A conditional NAF teacher fitted to y | c; the conditional IAF student, given
    the context, draws in one pass what the teacher draws by root solves. With
    the forward-KL term, its teacher samples are scored under their own contexts."""
    tf_keras.utils.set_random_seed(4)
    y, c = conditional_data(4000, seed=0)
    teacher = make_distribution(make_flow("naf", 2, num_flows=1, hidden_units=(32,),
                                          transform_units=8, conditional_event_size=1), 2)
    model = FlowModel(teacher, conditional_kwargs=conditional_kwargs(teacher))
    model.compile(tf_keras.optimizers.Adam(1e-2))
    model.fit(y, c, epochs=8, batch_size=200, verbose=0)
    student = iaf(2, conditional_event_size=1)
    before, _ = kl_estimate(teacher, student, 2000, context=c)
    distill(teacher, student, steps=600, batch_size=128, context=c,
            optimizer=tf_keras.optimizers.Adam(1e-2), forward_kl_weight=forward_kl_weight,
            forward_kl_samples=2000)
    after, stderr = kl_estimate(teacher, student, 2000, context=c)
    assert after < 0.2 * before and after < 0.3
    for value in (-0.8, 0.8):  # the student's p(y | c) is the teacher's, not the data's
        context = tf.fill([4000, 1], value)
        draw = {}
        for name, flow in (("teacher", teacher), ("student", student)):
            kwargs = {"bijector_kwargs": conditional_kwargs(flow)(context)}
            draw[name] = flow.sample(4000, seed=[5, 6], **kwargs).numpy()
        np.testing.assert_allclose(draw["student"].mean(0), draw["teacher"].mean(0), atol=0.1)
        np.testing.assert_allclose(draw["student"].mean(0), [2 * value, -value], atol=0.5)
