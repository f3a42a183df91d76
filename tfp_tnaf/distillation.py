"""Probability density distillation: a one-pass sampler trained to match a flow.

A neural autoregressive flow fitted by maximum likelihood scores in one
parallel pass (`inverse`) but samples in D sequential root-solving steps. As in
Parallel WaveNet (van den Oord et al. 2018), a *student* whose sampling
direction is one pass (the inverse-autoregressive direction) is trained to
match the *teacher* by the reverse Kullback-Leibler divergence

    KL(q || p) = E_{y ~ q}[log q(y) - log p(y)]
               = E_{x ~ N(0, I)}[log q(g(x)) - log p(g(x))],     y = g(x),

estimated on reparameterised samples `y = g(x)` of the student. Each step is
cheap: `g` is the student's one-pass forward map, `log q(y) = log N(x) - log
|det dg/dx|` comes with the sample (TFP's `experimental_sample_and_log_prob`,
the log-determinant left in the bijector's cache), and the teacher's `log p(y)`
is its parallel density pass. The estimate is >= 0 in expectation and 0 only
when q = p. Conditional flows distil with the context passed to both.

```python
teacher = make_distribution(make_flow("tnaf", 2), 2)            # fitted by maximum likelihood
student = make_distribution(tfb.Invert(make_flow("maf", 2, batch_norm=False)), 2)  # an IAF
result = distill(teacher, student, max_time=60)
kl, stderr = kl_estimate(teacher, student, 10_000)
student.sample(1000)                                            # one pass per layer
```

An optional warm start first fits the student by the forward KL, `E_{y ~
p}[log p(y) - log q(y)]` (maximum likelihood on teacher samples, which costs
the teacher's sequential sampling and the student's sequential density).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from tensorflow_probability.python.bijectors.invert import _Invert

from tfp_tnaf import checks
from tfp_tnaf.bijectors import MonotoneAutoregressive
from tfp_tnaf.models import Recipe
from tfp_tnaf.training import DECAYS, FlowModel, cosine_factor

__all__ = ["DistillResult", "RECIPE", "conditional_kwargs", "distill", "kl_estimate",
           "log_ratio"]

tfb, tfd = tfp.bijectors, tfp.distributions

# The reverse KL's default Adam step, for every student: 3e-3 with the global
# gradient norm clipped at 1. Measured for `Invert(NAF)` students on 2-D data
# (benchmarks/results/distill-cpu-2026-12-06): against NAF's own recipe (Adam
# 1e-3, unclipped) distilled from the same teacher it scored 0.03-0.08 nats
# higher four times of four; the unclipped step dropped a mode on siggraph in
# two runs of five.
RECIPE = Recipe(learning_rate=3e-3, global_clipnorm=1.0)

KwargsFn = Callable[[tf.Tensor], dict]

# Teacher samples drawn by default for the warm start and the forward-KL term's pool.
WARM_START_SAMPLES = 2000
FORWARD_KL_SAMPLES = 20_000

# The forward-KL pool's stream of teacher samples (`_teacher_samples`): apart
# from the warm start's (stream 0) and the estimates' seeds.
_POOL_STREAM = 2**30

# `tfb.Invert(...)` builds `_Invert` (as `tfb.Chain` builds `_Chain`) when the inner
# bijector is not a CompositeTensor, so `isinstance(b, tfb.Invert)` misses it.


@dataclasses.dataclass
class DistillResult:
    """What `distill` did.

    Attributes:
      steps: reverse-KL steps taken.
      seconds: wall-clock of the whole call (teacher sampling and warm start included).
      history: one `{"step", "seconds", "kl"}` record every `record_every` steps,
        `kl` the mean of the batch estimates since the last record.
      warm_start_steps, warm_start_seconds: the forward-KL warm start's steps
        taken (it stops at `max_time` too) and seconds (0 if none).
      skipped_steps: steps whose loss or gradients were not finite (not applied).
    """

    steps: int = 0
    seconds: float = 0.0
    history: list[dict] = dataclasses.field(default_factory=list)
    warm_start_steps: int = 0
    warm_start_seconds: float = 0.0
    skipped_steps: int = 0


def _layers(bijector: tfb.Bijector) -> list[tfb.Bijector]:
    """The layers of `bijector`, through `tfb.Invert` and `tfb.Chain`."""
    while isinstance(bijector, _Invert):
        bijector = bijector.bijector
    if isinstance(bijector, tfb.Composition):
        return [layer for b in bijector.bijectors for layer in _layers(b)]
    return [bijector]


def _takes_context(layer: tfb.Bijector) -> bool:
    if isinstance(layer, MonotoneAutoregressive):
        return layer.conditional_event_size is not None
    made = getattr(layer, "_made", None)  # the MAF layers of `make_flow("maf", ...)`
    return bool(getattr(made, "_conditional", False))


def conditional_kwargs(distribution: tfd.TransformedDistribution) -> KwargsFn:
    """Maps a context batch `c` to the `bijector_kwargs` of `distribution`'s flow.

    A single conditional layer (or `tfb.Invert` of one) gets
    `{"conditional_input": c}`; a chain (`make_flow`'s, or `tfb.Invert` of it,
    which hands its keyword arguments to the chain) gets
    `{name: {"conditional_input": c}}` for each conditional layer: the package's
    flows built with `conditional_event_size`, and `make_flow("maf", ...)`'s
    layers with a conditional MADE.

    Raises:
      ValueError: if no layer of the flow takes a context.
    """
    bijector = distribution.bijector
    while isinstance(bijector, _Invert):
        bijector = bijector.bijector
    names = [layer.name for layer in _layers(bijector) if _takes_context(layer)]
    if not names:
        raise ValueError(f"No layer of {distribution.name}'s flow takes a context; build it "
                         f"with `conditional_event_size`.")
    if not isinstance(bijector, tfb.Composition):
        return lambda c: {"conditional_input": c}
    return lambda c: {name: {"conditional_input": c} for name in names}


def log_ratio(teacher: tfd.Distribution, student: tfd.Distribution, num_samples: int,
              seed: Any = None, context: tf.Tensor | None = None,
              teacher_kwargs: KwargsFn | None = None,
              student_kwargs: KwargsFn | None = None) -> tf.Tensor:
    """`log q(y) - log p(y)` at `num_samples` reparameterised samples `y ~ q` of the student.

    Its mean is the Monte-Carlo estimate of the reverse KL, `KL(q || p)`, and
    it is differentiable in the student's variables (through the samples as
    well as the density). With a `context` `[num_samples, C]`, sample `i` is
    drawn from `q(. | c_i)` and scored by `p(. | c_i)`.

    Args:
      teacher: p, any distribution with `log_prob` (one pass for MAF-direction flows).
      student: q, a `tfd.TransformedDistribution` (its sample's log-density comes
        from the bijector's forward log-determinant, no inverse pass).
      num_samples: samples drawn.
      seed: a stateless seed (`[2]` integers) or None.
      context: `[num_samples, C]` conditioning values, or None.
      teacher_kwargs, student_kwargs: map the context to each one's
        `bijector_kwargs` (default: `conditional_kwargs(...)`).

    Returns:
      `[num_samples]` log-ratios.
    """
    if context is not None:
        context = tf.convert_to_tensor(context, student.dtype)
    y, log_q = student.experimental_sample_and_log_prob(
        num_samples, seed=seed, **_conditioned(student, student_kwargs, context))
    return log_q - teacher.log_prob(y, **_conditioned(teacher, teacher_kwargs, context))


def _conditioned(distribution, kwargs: KwargsFn | None, context) -> dict:
    """The keyword arguments that condition `distribution` on a `context` batch
    (`kwargs`, default `conditional_kwargs(distribution)`); none without one."""
    if context is None:
        return {}
    return {"bijector_kwargs": (kwargs or conditional_kwargs(distribution))(context)}


def kl_estimate(teacher: tfd.Distribution, student: tfd.Distribution, num_samples: int,
                seed: int = 0, context: np.ndarray | None = None, batch_size: int = 4096,
                teacher_kwargs: KwargsFn | None = None,
                student_kwargs: KwargsFn | None = None) -> tuple[float, float]:
    """Monte-Carlo estimate of `KL(q || p)` in nats and its standard error.

    The mean of `log q(y) - log p(y)` over `num_samples` samples `y ~ q`
    (see `log_ratio`), and the standard deviation of those values over
    `sqrt(num_samples)`. With `context` (`[M, C]`), sample `i` is conditioned
    on row `i mod M`: the estimate of `E_c KL(q(.|c) || p(.|c))` over those rows.
    """
    ratio = tf.function(lambda n, s, c: log_ratio(
        teacher, student, n, s, c, teacher_kwargs, student_kwargs), reduce_retracing=True)
    values = []
    for k, start in enumerate(range(0, num_samples, batch_size)):
        n = min(batch_size, num_samples - start)
        rows = None if context is None else np.asarray(context)[
            np.arange(start, start + n) % len(context)]
        values.append(ratio(n, tf.constant([seed, k]), rows).numpy())
    values = np.concatenate(values)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def _reverse_kl_step(teacher, student, optimizer, batch_size: int, teacher_kwargs,
                     student_kwargs, forward_kl_weight: float = 0.0) -> Callable:
    """One compiled step: `step(seed, context, pool, pool_context) -> (reverse KL, applied)`.

    Its loss is the reverse KL's estimate on `batch_size` student samples,
    plus, with a `pool` batch of teacher samples, `forward_kl_weight` times
    the student's mean negative log-density there (the forward KL up to the
    teacher's entropy). A step whose loss or gradients are not finite is not
    applied."""
    variables = student.trainable_variables
    if not variables:
        raise ValueError("The student has no trainable variables to distil into.")
    optimizer.build(variables)

    @tf.function
    def step(seed, context, pool=None, pool_context=None):
        with tf.GradientTape() as tape:
            reverse = tf.reduce_mean(log_ratio(teacher, student, batch_size, seed, context,
                                               teacher_kwargs, student_kwargs))
            loss = reverse
            if pool is not None:
                loss += forward_kl_weight * -tf.reduce_mean(student.log_prob(
                    pool, **_conditioned(student, student_kwargs, pool_context)))
        gradients = tape.gradient(loss, variables)
        gradients = [tf.zeros_like(v) if g is None else g
                     for g, v in zip(gradients, variables, strict=True)]
        finite = tf.math.is_finite(loss) & tf.reduce_all(
            [tf.reduce_all(tf.math.is_finite(g)) for g in gradients])

        def apply():
            optimizer.apply_gradients(zip(gradients, variables, strict=True))
            return tf.constant(True)

        return reverse, tf.cond(finite, apply, lambda: tf.constant(False))

    return step


def _batches(batch_size: int, context, pool) -> Callable:
    """`draw(rng)` -> a step's data: `batch_size` context rows, and a batch of the
    `(samples, rows)` pool with its context rows (None where there is none)."""
    def rows(array, index):
        return None if array is None else tf.constant(array[index])

    def draw(rng):
        drawn = (rows(context, rng.integers(0, len(context), batch_size))
                 if context is not None else None,)
        if pool is None:
            return drawn
        index = rng.integers(0, len(pool[0]), batch_size)
        return (*drawn, rows(pool[0], index), rows(pool[1], index))

    return draw


def _teacher_samples(teacher, num_samples: int, seed: int, context, teacher_kwargs,
                     stream: int = 0, deadline: float | None = None,
                     batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray | None]:
    """`num_samples` samples of the teacher (and the context rows they were drawn
    for), fewer if the `perf_counter` `deadline` passes (one batch at least);
    rows holding a non-finite value are dropped. Each `stream` of a seed draws
    its own samples (stateless seeds `[seed, stream + i]`)."""
    rows = None if context is None else np.asarray(context)[
        np.random.default_rng([seed, stream]).integers(0, len(context), num_samples)]

    @tf.function(reduce_retracing=True)
    def draw(n, s, c):
        return teacher.sample(n, seed=s, **_conditioned(teacher, teacher_kwargs, c))

    samples = []
    for i in range(0, num_samples, batch_size):
        if samples and deadline is not None and time.perf_counter() >= deadline:
            break
        samples.append(draw(min(batch_size, num_samples - i), tf.constant([seed, stream + i]),
                            None if rows is None else
                            tf.constant(rows[i:i + batch_size], teacher.dtype)).numpy())
    samples = np.concatenate(samples)
    finite = np.isfinite(samples).all(axis=-1)
    if not finite.any():
        raise ValueError("The teacher drew no finite sample to distil from.")
    return samples[finite], None if rows is None else rows[:len(samples)][finite]


def _warm_start(teacher, student, steps: int, num_samples: int, batch_size: int, seed: int,
                context, teacher_kwargs, student_kwargs, optimizer,
                deadline: float | None) -> int:
    """Maximum likelihood of the student on teacher samples (the forward KL),
    until `steps` or the `perf_counter` `deadline`; returns the steps taken."""
    samples, rows = _teacher_samples(teacher, num_samples, seed, context, teacher_kwargs)
    model = FlowModel(student, conditional_kwargs=None if context is None else (
        student_kwargs or conditional_kwargs(student)))
    model.compile(optimizer)
    rng = np.random.default_rng(seed)
    for taken in range(steps):
        if deadline is not None and time.perf_counter() >= deadline:
            return taken
        index = rng.integers(0, len(samples), batch_size)
        model.train_on_batch(samples[index], None if rows is None else rows[index])
    return steps


def _check_budget(steps: int | None, max_time: float | None) -> None:
    if steps is None and max_time is None:
        raise ValueError("Give `steps`, `max_time` or both: distillation needs a budget.")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or steps < 1):
        raise ValueError(f"`steps` must be a positive integer; got {steps!r}.")
    if max_time is not None and not 0 < max_time < np.inf:
        raise ValueError(f"`max_time` must be a positive number of seconds; got {max_time!r}.")


def distill(teacher: tfd.Distribution, student: tfd.TransformedDistribution, *,
            steps: int | None = None, max_time: float | None = None, batch_size: int = 256,
            context: np.ndarray | None = None,
            optimizer: tf_keras.optimizers.Optimizer | None = None,
            warm_start_steps: int = 0, warm_start_samples: int = WARM_START_SAMPLES,
            forward_kl_weight: float = 0.0, forward_kl_samples: int = FORWARD_KL_SAMPLES,
            decay: str = "constant", seed: int = 0,
            record_every: int = 50, teacher_kwargs: KwargsFn | None = None,
            student_kwargs: KwargsFn | None = None) -> DistillResult:
    """Trains `student` to match `teacher` by the reverse KL, on the student's own samples.

    Each step minimises the Monte-Carlo estimate

        L = (1/B) sum_b [log q(g(x_b)) - log p(g(x_b))],      x_b ~ N(0, I),

    of `KL(q || p)` over the student's variables (the teacher is left as it
    is), its gradient by reparameterisation through the student's sampling
    map `g`. For fast sampling give a student whose forward direction is one
    pass: `tfb.Invert` of one of the package's flows (its IAF variant), an IAF
    on TFP's MADE (`tfb.Invert(make_flow("maf", D, batch_norm=False))`), or a
    chain of these. With `context` (`[M, C]`, e.g. the training contexts), each
    step draws B rows and conditions both flows on them: `E_c KL(q(.|c) || p(.|c))`.

    With `warm_start_steps`, the student is first fitted by maximum likelihood
    to `warm_start_samples` teacher samples (the forward KL, `E_p[log p - log q]`):
    it costs the teacher's sequential sampling and the student's density, which
    is sequential for an IAF but one pass for a coupling flow. The warm start
    stops at `max_time` too, so more steps than the budget holds make the whole
    distillation maximum likelihood on teacher samples: mass-covering, which
    held-out log-likelihood rewards. At D=43 and 63 that, with a RealNVP student
    (`tfb.Invert(make_flow("realnvp", D, num_flows=K))`), is what recovers
    over 90% of a T-NAF teacher's gain in 120 s; the reverse KL alone leaves
    held-out points in tails the student never learnt (`benchmarks.distill`).

    Args:
      teacher: p, fitted; its `log_prob` is called on student samples.
      student: q, a `tfd.TransformedDistribution` with trainable variables.
      steps: reverse-KL steps (an upper bound with `max_time`).
      max_time: seconds of wall-clock for the whole call (warm start and
        tracing included), checked after each step.
      batch_size: B, samples per step.
      context: `[M, C]` conditioning values for conditional flows, or None.
      optimizer: of the reverse-KL steps; default `RECIPE.optimizer()`.
      warm_start_steps, warm_start_samples: the forward-KL warm start (0: none).
      forward_kl_weight: lambda of a forward-KL term in every step (0: none):
        the loss is `KL(q || p) + lambda E_{y ~ p}[-log q(y)]`, the second
        term on a pool of `forward_kl_samples` teacher samples drawn once
        (their sequential sampling counts in `max_time`; fewer are drawn if
        it runs out). It covers the
        teacher's mass, which held-out log-likelihood rewards, and which the
        reverse KL, mode-seeking, can drop. Each step then also evaluates
        the student's density, which is sequential for an `Invert(...)`
        student (cheap at D=2, D root solves at high D).
      decay: the learning rate of the reverse-KL steps: `"constant"`, or
        `"cosine"`, annealed to 0 over what is left of the budget when they
        begin (by the steps done or the seconds spent, whichever is further
        along: `tfp_tnaf.training.cosine_factor`), as `tfp-tnaf fit --decay
        cosine` anneals training. The optimizer's rate is put back when
        `distill` returns, so a second call starts where the first did.
      seed: seeds the samples and the warm start.
      record_every: steps between records of `history`.
      teacher_kwargs, student_kwargs: map a context batch to `bijector_kwargs`
        (default: `conditional_kwargs(...)`).

    Returns:
      A `DistillResult` (steps, seconds, history of the KL estimate, ...).

    Raises:
      ValueError: without `steps` or `max_time`; if `student` has no variables;
        on a `forward_kl_weight` that is not a finite number >= 0, a
        `forward_kl_samples` that is not a positive integer, a `decay` not
        of `DECAYS`, or `"cosine"` with an optimizer whose learning rate is
        a schedule rather than a number; if the teacher
        draws no finite sample for the warm start or the pool.
    """
    _check_budget(steps, max_time)
    forward_kl_weight = checks.non_negative(forward_kl_weight, "forward_kl_weight")
    forward_kl_samples = checks.positive_int(forward_kl_samples, "forward_kl_samples")
    decay = checks.one_of(decay, DECAYS, "decay")
    optimizer = optimizer or RECIPE.optimizer()
    if decay != "constant" and isinstance(getattr(optimizer, "_learning_rate", None),
                                          tf_keras.optimizers.schedules.LearningRateSchedule):
        raise ValueError(f"decay={decay!r} sets the optimizer's learning rate: give an "
                         "optimizer whose learning rate is a number, not a schedule.")
    if context is not None:
        context = np.asarray(context, student.dtype.as_numpy_dtype)
    start, result = time.perf_counter(), DistillResult()
    deadline = None if max_time is None else start + max_time
    if warm_start_steps:
        result.warm_start_steps = _warm_start(
            teacher, student, warm_start_steps, warm_start_samples, batch_size, seed, context,
            teacher_kwargs, student_kwargs, Recipe().optimizer(),  # maximum likelihood's
            deadline)
        result.warm_start_seconds = time.perf_counter() - start
    pool = _teacher_samples(teacher, forward_kl_samples, seed, context, teacher_kwargs,
                            _POOL_STREAM, deadline) if forward_kl_weight else None
    step = _reverse_kl_step(teacher, student, optimizer, batch_size, teacher_kwargs,
                            student_kwargs, forward_kl_weight)
    rate = float(optimizer.learning_rate.numpy())
    try:
        _run_steps(step, result, start, steps, max_time, _batches(batch_size, context, pool),
                   seed, record_every, _schedule(optimizer, rate, decay, steps, deadline))
    finally:
        optimizer.learning_rate.assign(rate)
    result.seconds = time.perf_counter() - start
    return result


def _schedule(optimizer, rate: float, decay: str, steps: int | None,
              deadline: float | None) -> Callable[[int], None]:
    """`set_rate(steps_done)`, called before each reverse-KL step: nothing for
    `"constant"`; for `"cosine"`, the optimizer's learning rate at `rate` (its
    initial value) times `cosine_factor` of the budget's fraction spent since
    now (by steps or by seconds, whichever is further along)."""
    if decay == "constant":
        return lambda done: None
    begin = time.perf_counter()

    def set_rate(done: int) -> None:
        progress = 0.0 if steps is None else done / steps
        if deadline is not None:
            now = time.perf_counter()
            progress = max(progress, (now - begin) / max(deadline - begin, 1e-9))
        optimizer.learning_rate.assign(rate * cosine_factor(progress))

    return set_rate


def _run_steps(step, result: DistillResult, start: float, steps: int | None,
               max_time: float | None, draw: Callable, seed: int, record_every: int,
               set_rate: Callable[[int], None]) -> None:
    """Runs `step` on `draw(rng)`'s data until `steps` or `max_time`, recording the
    mean reverse KL into `result`; `set_rate(steps done)` before each step."""
    rng = np.random.default_rng(seed)
    losses = []
    while (steps is None or result.steps < steps) and (
            max_time is None or time.perf_counter() - start < max_time):
        set_rate(result.steps)
        loss, applied = step(tf.constant([seed, result.steps + 1]), *draw(rng))
        result.steps += 1
        if not bool(applied):
            result.skipped_steps += 1
            continue
        losses.append(float(loss))
        if result.steps % record_every == 0:
            result.history.append(dict(step=result.steps, seconds=time.perf_counter() - start,
                                       kl=float(np.mean(losses))))
            losses = []
