import numpy as np
import pytest
import tensorflow as tf

from tfp_tnaf import DeepSigmoidal, RootSolver, root_diagnostics


def cubic(y, params):
    """f(y) = a y^3 + b y, increasing for a, b > 0."""
    a, b = params
    return a * y**3 + b * y, tf.math.log(3 * a * y**2 + b)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_solves_far_outside_unit_bracket(dtype):
    target = tf.constant([-1e12, -1e6, -3.0, 0.0, 1e-3, 7.0, 1e6, 1e12], dtype)
    params = (tf.constant(0.5, dtype), tf.constant(2.0, dtype))
    result = RootSolver()(cubic, target, params)
    value, _ = cubic(result.y, params)
    np.testing.assert_allclose(value.numpy(), target.numpy(), rtol=1e-5)
    assert bool(tf.reduce_all(result.converged))
    diagnostics = root_diagnostics(result)
    assert int(diagnostics["num_not_converged"]) == 0
    assert float(diagnostics["max_residual"]) <= 1e-5 * 1e12


def test_bracket_budget_too_small_is_reported():
    # Two doublings reach |x| <= 4, so x^3 = 1e6 cannot be bracketed.
    solver = RootSolver(max_bracket_steps=2, max_iterations=50)
    result = solver(cubic, tf.constant([1e6, 1.0]), (tf.constant(1.0), tf.constant(1.0)))
    diagnostics = root_diagnostics(result)
    assert float(result.residual[0]) > 1.0
    assert float(result.residual[1]) < 1e-5
    assert float(diagnostics["max_residual"]) > 1.0
    assert result.converged.numpy().tolist() == [False, True]
    assert int(diagnostics["num_not_converged"]) == 1
    assert int(diagnostics["num_bracket_steps"]) == 2


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_bracket_expands_to_targets_far_outside_the_data(dtype):
    # A deep sigmoidal flow with random pseudo-parameters: near the data it
    # bends, far away it is linear with slope min_j a_j, so noise values of
    # +-1e5 have roots thousands of units out. The bracket [-2^k, 2^k] needs
    # k = ceil(log2 |x|) doublings for the farthest root, and no more.
    rng = np.random.default_rng(4)
    size = 6
    params = rng.normal(size=(size, DeepSigmoidal.num_params(4, 2)))
    transform = DeepSigmoidal(tf.constant(params, dtype), units=4, layers=2)
    target = tf.constant([-1e5, -3e3, -40.0, 0.5, 2e3, 1e5], dtype)
    result = transform.solve_forward(target)
    y = result.y.numpy()
    np.testing.assert_allclose(transform.inverse(tf.constant(y)).numpy(), target.numpy(),
                               rtol=1e-5 if dtype == tf.float32 else 1e-11)
    diagnostics = root_diagnostics(result)
    assert int(diagnostics["num_not_converged"]) == 0
    assert np.max(np.abs(y)) > 1e3
    assert int(diagnostics["num_bracket_steps"]) == int(np.ceil(np.log2(np.max(np.abs(y)))))
    # With two doublings fewer the farthest roots are left unbracketed and
    # reported, while the near ones still converge.
    short = RootSolver(max_bracket_steps=int(diagnostics["num_bracket_steps"]) - 2)
    clipped = DeepSigmoidal(tf.constant(params, dtype), units=4, layers=2,
                            root_solver=short).solve_forward(target)
    far = np.abs(y) > 2.0 ** int(clipped.num_bracket_steps)
    assert far.any() and not far.all()
    assert not clipped.converged.numpy()[far].any()
    assert clipped.converged.numpy()[~far].all()
    np.testing.assert_allclose(clipped.y.numpy()[~far], y[~far], rtol=1e-5)


def test_iteration_budget_too_small_is_reported():
    result = RootSolver(max_iterations=1)(
        cubic, tf.constant([3.3, -2.1]), (tf.constant(1.0), tf.constant(1.0)))
    assert int(root_diagnostics(result)["num_not_converged"]) == 2


def test_implicit_gradients_match_finite_differences():
    target = tf.constant([0.3, 5.0, -40.0], tf.float64)
    a = tf.Variable(0.7, dtype=tf.float64)
    b = tf.Variable(1.3, dtype=tf.float64)
    solver = RootSolver()
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(target)
        y = solver(cubic, target, (a, b)).y
        total = tf.reduce_sum(y)
    grads = tape.gradient(total, [a, b, target])
    eps = 1e-6

    def total_at(a_, b_, t_):
        return float(tf.reduce_sum(solver(cubic, t_, (a_, b_)).y))

    fd_a = (total_at(a + eps, b, target) - total_at(a - eps, b, target)) / (2 * eps)
    fd_b = (total_at(a, b + eps, target) - total_at(a, b - eps, target)) / (2 * eps)
    np.testing.assert_allclose(grads[0].numpy(), fd_a, rtol=1e-6)
    np.testing.assert_allclose(grads[1].numpy(), fd_b, rtol=1e-6)
    _, log_df = cubic(y, (a, b))
    np.testing.assert_allclose(grads[2].numpy(), np.exp(-log_df.numpy()), rtol=1e-10)


def test_non_finite_targets_map_to_limits():
    result = RootSolver()(cubic, tf.constant([np.nan, np.inf, -np.inf, 2.0]),
                          (tf.constant(1.0), tf.constant(1.0)))
    y = result.y.numpy()
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == -np.inf and np.isfinite(y[3])


def test_runs_under_xla():
    solve = tf.function(lambda t: RootSolver()(cubic, t, (tf.constant(1.0), tf.constant(1.0))).y,
                        jit_compile=True)
    target = tf.constant([-5.0, 0.5, 300.0])
    np.testing.assert_allclose(solve(target).numpy(),
                               RootSolver()(cubic, target, (1.0, 1.0)).y.numpy(), rtol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(max_iterations=0), dict(max_bracket_steps=-1),
                                    dict(rtol=0.0), dict(atol=-1.0), dict(max_iterations=2.5),
                                    dict(polish_steps=-1)])
def test_invalid_options_name_the_argument(kwargs):
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        RootSolver(**kwargs)


def _monotone_network_case(dtype):
    """T-NAF's transform with moderate random pseudo-parameters, and targets."""
    from tfp_tnaf import MonotoneNetworkTransform

    return _transform_case(MonotoneNetworkTransform(16), 0.5, dtype)


def _dsf_case(dtype):
    """A one-layer DSF with spread-out sigmoids (slopes, centres and weights
    random), and targets."""
    from tfp_tnaf import DeepSigmoidalTransform

    return _transform_case(DeepSigmoidalTransform(16), 2.0, dtype)


def _transform_case(transform, scale, dtype):
    """`transform` with its initial pseudo-parameters plus normal noise of
    `scale`, and normal targets of spread 3."""
    rng = np.random.default_rng(3)
    params = transform.initial_params(tf.float64).numpy() + rng.normal(
        scale=scale, size=(4000, transform.num_params))
    return transform, tf.constant(params, dtype), tf.constant(rng.normal(
        scale=3.0, size=4000), dtype)


@pytest.mark.parametrize("path", ["call", "invert", "elementwise"])
def test_float32_roots_are_polished_to_the_nearest_float(path):
    """Each float32 root is the float32 nearest the root of the map evaluated
    in float64 (the float64 solve, rounded), after one float64 Newton step;
    the float32 solve alone stops within a few ulps of it. Through the
    transform's prepared map too (`invert`, what the flows use): its polish
    is the transform's own."""
    from tfp_tnaf import MonotoneElementwise

    transform, params, x = _monotone_network_case(tf.float32)
    exact = RootSolver()(transform, tf.cast(x, tf.float64), tf.cast(params, tf.float64))
    nearest = tf.cast(exact.y, tf.float32).numpy()
    solve = {"call": lambda solver: solver(transform, x, params),
             "invert": lambda solver: solver.invert(transform, x, params),
             "elementwise": lambda solver: MonotoneElementwise(
                 params, transform, root_solver=solver).solve_forward(x)}[path]
    ulps = {}
    for steps in (0, 1):
        y = solve(RootSolver(polish_steps=steps)).y.numpy()
        ulps[steps] = np.abs(y - nearest) / np.spacing(np.abs(nearest))
    assert np.max(ulps[1]) <= 1 and np.mean(ulps[1] == 0) >= 0.99
    assert np.mean(ulps[0] == 0) < np.mean(ulps[1] == 0)  # the step is what does it


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_saturated_units_with_overflowing_weights_still_invert(dtype):
    # exp(w1) overflows: the prepared map's slope saturates (no NaN), Newton
    # falls back to bisection, and the root is the one of the transform.
    from tfp_tnaf import MonotoneElementwise, MonotoneNetworkTransform

    transform = MonotoneNetworkTransform(2, dtype=dtype)
    big = 89.0 if dtype == tf.float32 else 710.0
    params = tf.constant([big, 0.0, 0.0, 0.0, 0.0, 0.0, -0.7, -0.7, 0.0, 0.0], dtype)
    bijector = MonotoneElementwise(params, transform)
    y = tf.constant([1.0, -2.0, 1e30], dtype)
    result = bijector.solve_forward(bijector.inverse(y))
    assert bool(tf.reduce_all(result.converged))
    np.testing.assert_allclose(result.y.numpy(), y.numpy(), rtol=1e-6)


@pytest.mark.parametrize("case", [_monotone_network_case, _dsf_case])
def test_transform_bracket_encloses_every_root(case):
    """`MonotoneNetworkTransform.bracket` (the bounded tanh term plus the linear
    skip) and the one-layer `DeepSigmoidalTransform.bracket` (the logit of a
    mixture of sigmoids lies between their pre-activations) hold each root,
    for targets near the data and far outside it."""
    transform, params, x = case(tf.float64)
    x = tf.concat([x, 1e6 * x, tf.constant([-1e12, 0.0, 1e12], tf.float64)], 0)
    params = tf.concat([params, params, params[:3]], 0)
    lo, hi = transform.bracket(x, params)
    assert bool(tf.reduce_all(lo < hi))
    assert bool(tf.reduce_all(transform(lo, params)[0] <= x))
    assert bool(tf.reduce_all(transform(hi, params)[0] >= x))


def _solve_from_bracket_and_default(case, dtype):
    """The roots of `case` solved from its transform's bracket and from the
    default `[-1, 1]`: the first runs no doubling and converges everywhere,
    and both find the same roots."""
    transform, params, x = case(dtype)
    bracketed = RootSolver()(transform, x, params, transform.bracket(x, params))
    default = RootSolver()(transform, x, params)
    assert int(bracketed.num_bracket_steps) == 0 and bool(tf.reduce_all(bracketed.converged))
    rtol = 1e-6 if dtype == tf.float32 else 1e-13
    np.testing.assert_allclose(bracketed.y.numpy(), default.y.numpy(), rtol=rtol, atol=rtol)
    return bracketed, default


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_transform_bracket_needs_no_search_and_few_newton_steps(dtype):
    """From the transform's bracket the solve runs no doubling, every element
    converges within a few safeguarded Newton steps (a step below the
    tolerance ends the search even where it rounds onto the bracket's end),
    and the roots are those found from the default bracket."""
    bracketed, default = _solve_from_bracket_and_default(_monotone_network_case, dtype)
    assert int(default.num_bracket_steps) > 0
    assert int(bracketed.num_iterations) <= 8


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_dsf_bracket_saves_the_search_and_finds_the_same_roots(dtype):
    """From the one-layer DSF's bracket the solve runs no doubling, converges
    everywhere with fewer evaluations of the transform (iterations plus
    doublings) than the search from `[-1, 1]`, and finds the same roots."""
    bracketed, default = _solve_from_bracket_and_default(_dsf_case, dtype)
    assert int(bracketed.num_iterations) < int(default.num_iterations
                                               + default.num_bracket_steps)


def test_deeper_sigmoidal_transforms_leave_the_bracket_to_the_search():
    """Only one DSF layer has the closed-form bracket."""
    from tfp_tnaf import DeepDenseSigmoidalTransform, DeepSigmoidalTransform

    for transform in (DeepSigmoidalTransform(4, layers=2), DeepDenseSigmoidalTransform(4)):
        params = transform.initial_params()[tf.newaxis]
        assert transform.bracket(tf.zeros([1]), params) is None


def test_bracket_that_misses_the_root_is_expanded():
    params = (tf.constant(1.0), tf.constant(1.0))
    target = tf.constant([-5.0, 0.5, 300.0, 2.0])
    nan, inf = float("nan"), float("inf")
    target = tf.concat([target, [3.0, -4.0]], 0)
    lo = tf.constant([10.0, 10.0, -3.0, nan, -inf, 5.0])
    # The first three brackets miss the root; the last three are unusable
    # (NaN, infinite, reversed) and replaced by [-1, 1].
    hi = tf.constant([11.0, 11.0, -2.0, nan, inf, 1.0])
    result = RootSolver()(cubic, target, params, bracket=(lo, hi))
    assert bool(tf.reduce_all(result.converged)) and int(result.num_bracket_steps) > 0
    np.testing.assert_allclose(cubic(result.y, params)[0].numpy(), target.numpy(), rtol=1e-6)


@pytest.mark.parametrize("with_bracket", [True, False])
def test_newton_steps_below_tolerance_end_the_solve(with_bracket):
    """Elements of a trained T-NAF (`tests/data/tnaf_cycling_roots.npz`) whose
    float32 Newton steps fell just under the tolerance and were undone by the
    next: the step under the tolerance is the last, so each converges in a few
    iterations (the cycle ran to the iteration budget)."""
    from pathlib import Path

    from tfp_tnaf import MonotoneNetworkTransform

    recorded = np.load(Path(__file__).parent / "data" / "tnaf_cycling_roots.npz")
    transform = MonotoneNetworkTransform(recorded["log_mixing"].shape[0],
                                         linear_slope=float(recorded["linear_slope"]))
    transform.log_mixing.assign(recorded["log_mixing"])
    x, params = tf.constant(recorded["x"]), tf.constant(recorded["params"])
    bracket = transform.bracket(x, params) if with_bracket else None
    result = RootSolver()(transform, x, params, bracket)
    assert bool(tf.reduce_all(result.converged)) and int(result.num_iterations) <= 20
    residual = np.abs(transform(result.y, params)[0].numpy() - recorded["x"])
    assert np.all(residual <= 1e-5 * (1 + np.abs(recorded["x"])))


def test_an_enclosing_bracket_is_used_as_given():
    """A bracket that holds the roots needs no doubling, where the default
    start [-1, 1] needs several for the same targets."""
    params = (tf.constant(1.0), tf.constant(1.0))
    target = tf.constant([300.0, -1e4])  # roots near 6.7 and -21.5
    given = RootSolver()(cubic, target, params,
                         bracket=(tf.constant([6.0, -22.0]), tf.constant([7.0, -21.0])))
    default = RootSolver()(cubic, target, params)
    assert int(given.num_bracket_steps) == 0 and int(default.num_bracket_steps) >= 3
    assert bool(tf.reduce_all(given.converged))
    np.testing.assert_allclose(given.y.numpy(), default.y.numpy(), rtol=1e-6)
