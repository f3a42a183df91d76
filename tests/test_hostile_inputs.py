"""Hostile inputs: each gives a correct finite answer or a clear error (with
`validate_args=True`), never a silent wrong number. Without validation,
non-finite values stay in their own rows (README, "Bad input"). Hostile data
files given to `tfp-tnaf fit --data` get a one-line error, never a traceback."""

import json
import pickle

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.support.flows import FLOWS, make_flow, normal_base
from tests.test_cli import TINY, run, run_in_process
from tests.test_data import _Evil  # unpickled, it creates a file
from tfp_tnaf import DeepSigmoidal, cli

tfd = tfp.distributions
NAMES = list(FLOWS)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_values_are_errors_with_validation(name):
    flow = make_flow(name, 3, validate_args=True)
    dist = tfd.TransformedDistribution(normal_base(3), flow)
    for bad in (np.nan, np.inf, -np.inf):
        value = tf.constant([[0.0, 1.0, 2.0], [0.5, bad, 1.0]], tf.float32)
        for call in (flow.inverse, flow.forward, flow.inverse_log_det_jacobian,
                     flow.forward_log_det_jacobian, dist.log_prob):
            with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
                call(tf.identity(value))
    conditional = make_flow(name, 3, conditional_event_size=2, validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="conditional_input.*finite"):
        conditional.inverse(tf.zeros([2, 3]),
                            conditional_input=tf.constant([[0.0, 1.0], [np.nan, 0.0]]))


@pytest.mark.parametrize("name", NAMES)
def test_without_validation_non_finite_values_stay_in_their_rows(name):
    flow = make_flow(name, 3)
    dist = tfd.TransformedDistribution(normal_base(3), flow)
    clean = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    dirty = clean.copy()
    dirty[1, 1], dirty[3, 0] = np.nan, np.inf
    log_prob = dist.log_prob(dirty).numpy()
    expected = dist.log_prob(clean).numpy()
    assert np.isnan(log_prob[1]) and np.isnan(log_prob[3])
    np.testing.assert_array_equal(log_prob[[0, 2]], expected[[0, 2]])
    for direction in (flow.inverse, flow.forward):
        out = direction(tf.constant(dirty)).numpy()
        np.testing.assert_array_equal(out[[0, 2]], direction(tf.constant(clean)).numpy()[[0, 2]])
        # What the non-finite value feeds is not meaningful: never all finite.
        assert not np.all(np.isfinite(out[1])) and not np.all(np.isfinite(out[3]))


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("name", NAMES)
def test_huge_and_denormal_values(name, dtype):
    flow = make_flow(name, 3, dtype)
    eps = np.finfo(dtype.as_numpy_dtype).eps
    huge = np.array([[1e6, -1e6, 3e5], [-2e6, 5.0, 1e6]])
    for values in (huge, np.zeros((1, 3)) + 1e-30):
        # Next to 2e6, the 5.0 of the same row is conditioned on a huge value:
        # round trips are exact to 50 ulps of the row's largest entry
        # (on either side of the map).
        y = tf.constant(values, dtype)
        z = flow.inverse(y)
        assert np.all(np.isfinite(z.numpy()))
        scale = np.max(np.abs(np.concatenate([values, z.numpy()], -1)), -1, keepdims=True)
        atol = 50 * eps * scale + 100 * eps
        assert np.all(np.isfinite(flow.inverse_log_det_jacobian(tf.identity(y)).numpy()))
        assert np.all(np.abs(flow.forward(tf.identity(z)).numpy() - values) <= atol)
        x = tf.constant(values, dtype)
        solved = flow.solve_forward(x)
        assert np.all(np.isfinite(solved.y.numpy()))
        assert np.all(np.isfinite(flow.forward_log_det_jacobian(tf.identity(x)).numpy()))
        # Conditioned on 1e6-sized values, a randomly perturbed float32 DDSF
        # can jump over a target between two neighbouring floats: no float
        # inverts it there. Such an element must be reported, never silent.
        exact = np.abs(flow.inverse(solved.y).numpy() - values) <= atol
        assert np.all(exact | ~solved.converged.numpy())
        assert np.mean(exact) >= 0.8
    # Subnormal numbers behave as the zero they are closest to.
    tiny = np.finfo(dtype.as_numpy_dtype).smallest_subnormal
    sub = flow.inverse(tf.constant([[tiny, -tiny, 0.0]], dtype)).numpy()
    np.testing.assert_allclose(sub, flow.inverse(tf.zeros([1, 3], dtype)).numpy(),
                               rtol=10 * eps, atol=10 * eps)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batches(name):
    flow = make_flow(name, 3, validate_args=True)
    dist = tfd.TransformedDistribution(normal_base(3), flow)
    empty = tf.zeros([0, 3])
    assert flow.inverse(empty).shape == (0, 3)
    assert flow.forward(empty).shape == (0, 3)
    assert flow.inverse_log_det_jacobian(empty).shape == (0,)
    assert dist.log_prob(tf.zeros([2, 0, 3])).shape == (2, 0)
    assert dist.sample(0, seed=1).shape == (0, 3)


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_wrong_dtypes_ranks_and_sizes_are_named(name, validate):
    flow = make_flow(name, 3, validate_args=validate)
    with pytest.raises(ValueError, match="Expected event size 3 .* got 4"):
        flow.inverse(tf.zeros([2, 4]))
    with pytest.raises((TypeError, ValueError), match="y.*float32.*int32|int32.*float32"):
        flow.inverse(tf.zeros([2, 3], tf.int32))
    with pytest.raises(ValueError, match="float32"):
        flow.forward(tf.zeros([2, 3], tf.float64))
    with pytest.raises(ValueError, match="`y` must have at least one axis"):
        flow.inverse(tf.constant(1.0))
    with pytest.raises(ValueError, match="`x` must have at least one axis"):
        flow.forward(tf.constant(1.0))
    with pytest.raises(ValueError, match="rank at least 1"):
        flow.inverse_log_det_jacobian(tf.constant(1.0))
    conditional = make_flow(name, 3, conditional_event_size=2, validate_args=validate)
    with pytest.raises(ValueError, match="conditional_input"):
        conditional.inverse(tf.zeros([2, 3]), conditional_input=tf.constant(1.0))
    with pytest.raises((TypeError, ValueError), match="conditional_input|float32"):
        conditional.inverse(tf.zeros([2, 3]), conditional_input=tf.zeros([2, 2], tf.float64))


def test_elementwise_transform_hostile_inputs():
    params = np.random.default_rng(1).normal(size=(DeepSigmoidal.num_params(4, 2),))
    checked = DeepSigmoidal(tf.constant(params, tf.float32), 4, 2, validate_args=True)
    for call in (checked.inverse, checked.forward):
        with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
            call(tf.constant([0.0, np.nan]))
    plain = DeepSigmoidal(tf.constant(params, tf.float32), 4, 2)
    out = plain.forward(tf.constant([np.nan, np.inf, -np.inf, 1e6, 0.0])).numpy()
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == -np.inf
    assert np.all(np.isfinite(out[3:]))
    assert plain.inverse(tf.zeros([0])).shape == (0,)


# --- hostile data files on the command line ----------------------------------------------------


def _points(rows=300, dims=2):
    return np.random.default_rng(0).normal(size=(rows, dims))


def _write_hostile(kind, folder):
    """Writes a hostile data file of `kind` into `folder`; returns its path and the error
    that `tfp-tnaf fit` must give (after `tfp-tnaf: error: `)."""
    points, path = _points(), folder / f"{kind}.npy"
    refused = "refused and never unpickled (allow_pickle=False: unpickling can run code)"
    if kind == "nan":
        points[[4, 90]] = np.nan
        expected = (f"{path} has NaN or inf in 2 of its 300 rows (the first is row 4, counting "
                    f"from 0); remove those rows, or drop them with --drop-nonfinite")
    elif kind == "inf":
        points[299, 1] = -np.inf
        expected = (f"{path} has NaN or inf in 1 of its 300 rows (the first is row 299, "
                    f"counting from 0); remove those rows, or drop them with --drop-nonfinite")
    elif kind == "constant":
        points[:, 1] = 5.0
        expected = (f"{path}: column 1 holds one value (5) in every row; drop it (a flow needs "
                    f"spread in every column)")
    elif kind == "few":
        points = points[:7]
        expected = (f"{path} has 7 rows; it needs at least 10 to split them 80/10/10 into "
                    f"training, validation and test rows")
    elif kind == "batch":
        points = points[:100]
        expected = (f"{path} has 100 rows; it needs at least 248 for an 80/10/10 split with one "
                    f"batch of 200 training rows (pass a smaller --batch-size to need fewer)")
    elif kind == "flat":
        points = points[:, 0]
        expected = (f"{path} holds a 1-D array of 300 values; data must be 2-D, [num_points, "
                    f"num_dims]: for 300 points of one dimension, save x.reshape(-1, 1)")
    if kind == "constant-csv":
        path = folder / "named.csv"
        points[:, 1] = 0.0
        np.savetxt(path, points, delimiter=",", header="height,zero", comments="")
        expected = (f"{path}: column 1 ('zero') holds one value (0) in every row; drop it (a "
                    f"flow needs spread in every column)")
    elif kind == "object":
        np.save(path, np.array([_Evil(folder / "marker"), 1.0], dtype=object), allow_pickle=True)
        expected = f"{path} holds an object array (pickled Python objects), {refused}; " \
                   f"save an array of numbers"
    elif kind == "object-npz":
        path = folder / "objects.npz"
        np.savez(path, points=np.array([_Evil(folder / "marker"), 1.0], dtype=object))
        expected = f"{path} (array 'points') holds an object array (pickled Python objects), " \
                   f"{refused}; save an array of numbers"
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(_Evil(folder / "marker")))
        expected = f"{path} is not a NumPy .npy array file: NumPy would read it as a pickle, " \
                   f"{refused}"
    elif kind == "several-npz":
        path = folder / "several.npz"
        np.savez(path, train=points, extra=points[:, :1])
        expected = f"{path} holds 2 arrays ('train', 'extra'); choose one with --data-key NAME"
    else:
        np.save(path, points)
    return path, expected


HOSTILE = ["nan", "inf", "constant", "constant-csv", "few", "batch", "flat", "object",
           "object-npz", "pickle", "several-npz"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_data_files_get_a_one_line_error(kind, tmp_path, capsys):
    path, expected = _write_hostile(kind, tmp_path)
    # In-process: an exception other than the CLI's own exit fails the test.
    batch = ["--batch-size", "8"] if kind == "few" else []  # 10 rows split; 10 hold a batch
    code, output = run_in_process(capsys, "fit", "--data", str(path), "--out",
                                  str(tmp_path / "run"), *TINY, *batch)
    assert code == 2 and output.splitlines()[-1] == f"tfp-tnaf: error: {expected}", output
    assert "Traceback" not in output
    assert not (tmp_path / "marker").exists()  # no pickle was run
    assert not (tmp_path / "run").exists()  # refused before any folder is made


def test_a_pickled_data_file_is_refused_by_the_real_command(tmp_path):
    path, expected = _write_hostile("object", tmp_path)
    code, output = run("fit", "--data", str(path), "--out", str(tmp_path / "run"), *TINY)
    assert code == 2 and f"tfp-tnaf: error: {expected}\n" in output, output
    assert "Traceback" not in output and not (tmp_path / "marker").exists()


def test_npz_key_errors_are_explained(tmp_path, capsys):
    path = tmp_path / "several.npz"
    np.savez(path, a=_points(), b=_points())
    code, output = run_in_process(capsys, "fit", "--data", str(path), "--data-key", "c",
                                  "--out", str(tmp_path / "run"))
    assert code == 2 and output.endswith(
        f"tfp-tnaf: error: {path} has no array 'c'; its arrays are 'a', 'b'\n")
    code, output = run_in_process(capsys, "fit", "--data", "moons", "--data-key", "a",
                                  "--out", str(tmp_path / "run"))
    assert code == 2 and output.endswith(
        "tfp-tnaf: error: --data-key (key=) names an array of an .npz file; 'moons' is not one\n")


FAST = [*TINY[:TINY.index("--epochs")], "--epochs", "1", "--samples", "50", "--verbose", "0",
        "--flow", "naf", "--hidden-units", "8"]


def _fit(capsys, tmp_path, *args) -> tuple[str, dict]:
    """`tfp-tnaf fit ARGS` in-process on tiny settings -> (its output, its config.json)."""
    out = tmp_path / "run"
    cli.main(["fit", *FAST, "--out", str(out), *args])
    return capsys.readouterr().out, json.loads((out / "config.json").read_text())


def test_user_files_train_csv_with_header_and_dropped_rows_npz_by_key(tmp_path, capsys):
    points = _points(dims=3)
    points[[10, 20], [0, 2]] = np.nan
    named = tmp_path / "named.csv"
    np.savetxt(named, points, delimiter=",", header="a,b,c", comments="")
    output, config = _fit(capsys, tmp_path, "--data", str(named), "--drop-nonfinite",
                          "--verbose", "2")
    dropped = f"dropped 2 of the 300 rows of {named}: they hold NaN or inf"
    assert output.count(dropped) == 1 and "Traceback" not in output
    assert f"naf on {named}: D=3" in output and "240 training points" in output  # 298 rows
    assert config["drop_nonfinite"] and config["event_size"] == 3
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, _points(dims=2), delimiter=",")  # no header: 300 rows of data
    _, config = _fit(capsys, tmp_path, "--data", str(plain))
    assert config["event_size"] == 2
    several = tmp_path / "several.npz"
    np.savez(several, a=_points(dims=3), b=_points(dims=1))
    _, config = _fit(capsys, tmp_path, "--data", str(several), "--data-key", "b")
    assert config["event_size"] == 1 and config["data_key"] == "b"
