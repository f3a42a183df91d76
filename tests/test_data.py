"""Tests of the data loaders, on the real files in ../shared/data and on broken copies."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from tfp_tnaf import data
from tfp_tnaf.data import DATASETS, Splits, bsds300, digits, load, miniboone, siggraph, two_moons

SMALL = {"num_train": 2000, "num_validation": 200, "num_test": 500}


def _check_standardised(splits: Splits, dims: int) -> None:
    for s in splits:
        assert s.dtype == np.float32 and s.ndim == 2 and s.shape[1] == dims
        assert np.all(np.isfinite(s))
    np.testing.assert_allclose(splits.train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(splits.train.std(axis=0), 1.0, atol=1e-3)


def _rows(array: np.ndarray) -> set:
    return {row.tobytes() for row in array}


def _equal(a: Splits, b: Splits) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture
def folder(tmp_path):
    """An empty data folder, the one the loaders find through $TFP_TNAF_DATA."""
    root = tmp_path / "data"
    root.mkdir()
    return root


def _write(path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


# --- data folder resolution ------------------------------------------------------------------


def test_data_dir_default_finds_shared_data(monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    root = data.data_dir()
    assert (root / "siggraph" / "siggraph.pkl").is_file()
    assert (root / "miniboone" / "val.npy").is_file()


def test_data_dir_argument_and_environment(monkeypatch, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "b"))
    assert data.data_dir() == tmp_path / "b"
    assert data.data_dir(tmp_path / "a") == tmp_path / "a"  # the argument wins
    assert data.data_dir(str(tmp_path / "a")) == tmp_path / "a"


def test_data_dir_missing_argument_or_environment(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="TFP_TNAF_DATA") as info:
        data.data_dir(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value) and "--data-dir" in str(info.value)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="gone"):
        data.data_dir()


def test_data_dir_nothing_found_lists_every_path(monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "__file__", str(tmp_path / "repo" / "tfp_tnaf" / "data.py"))
    cwd = tmp_path / "x" / "y"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    with pytest.raises(FileNotFoundError) as info:
        data.data_dir()
    message = str(info.value)
    for path in (tmp_path / "shared" / "data", tmp_path / "x" / "shared" / "data",
                 cwd / "shared" / "data"):
        assert str(path) in message
    assert "TFP_TNAF_DATA" in message and "data_dir=" in message


def test_loader_uses_environment_folder(monkeypatch, folder):
    points = [(float(i), float(i % 7)) for i in range(100)]
    _write(folder / "siggraph" / "siggraph.pkl", pickle.dumps(points, protocol=2))
    monkeypatch.setenv(data.DATA_ENV, str(folder))
    splits = siggraph(num_validation=10, num_test=20)
    assert [s.shape for s in splits] == [(70, 2), (10, 2), (20, 2)]
    with pytest.raises(FileNotFoundError, match="miniboone"):
        miniboone()  # the real folder is not used once $TFP_TNAF_DATA is set


def test_missing_file_names_path(folder):
    with pytest.raises(FileNotFoundError) as info:
        siggraph(data_dir=folder)
    assert str(folder / "siggraph" / "siggraph.pkl") in str(info.value)
    assert "TFP_TNAF_DATA" in str(info.value)
    with pytest.raises(FileNotFoundError, match="ROTATED_TRAIN"):
        bsds300(data_dir=folder, cache_dir=folder / "cache", **SMALL)


# --- two moons, siggraph -----------------------------------------------------------------------


def test_two_moons():
    splits = two_moons(num_train=500, num_validation=50, num_test=100, seed=3)
    assert [s.shape for s in splits] == [(500, 2), (50, 2), (100, 2)]
    _check_standardised(splits, 2)


def test_siggraph():
    splits = siggraph()
    assert [s.shape for s in splits] == [(7800, 2), (1000, 2), (1000, 2)]
    _check_standardised(splits, 2)
    assert len(_rows(np.concatenate(splits))) == 9800  # every point once, no overlap
    assert _equal(splits, siggraph(seed=0))
    other = siggraph(seed=1)
    assert not np.array_equal(splits.test, other.test)
    # Same cloud, other shuffle: the sorted x coordinates of all points agree closely.
    np.testing.assert_allclose(np.sort(np.concatenate(splits)[:, 0]),
                               np.sort(np.concatenate(other)[:, 0]), atol=0.05)


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")  # unpickled normally, this creates a file


@pytest.mark.parametrize("content", ["global", "code", "garbage", "triples", "dict", "strings"])
def test_siggraph_bad_pickle(folder, content):
    marker = folder / "marker"
    payload = {"global": pickle.dumps(os.system),
               "code": pickle.dumps([(0.0, 1.0), _Evil(marker)]),
               "garbage": b"\x80\x02this is not a pickle\x00\xff",
               "triples": pickle.dumps([(0.0, 1.0, 2.0)] * 50),
               "dict": pickle.dumps({"x": [0.0] * 50}),
               "strings": pickle.dumps([("a", "b")] * 50)}[content]
    _write(folder / "siggraph" / "siggraph.pkl", payload)
    with pytest.raises(ValueError, match="siggraph.pkl"):
        siggraph(data_dir=folder, num_validation=5, num_test=5)
    assert not marker.exists()


# --- miniboone -----------------------------------------------------------------------------------


def test_miniboone():
    splits = miniboone()
    assert [s.shape for s in splits] == [(2956, 43), (328, 43), (3648, 43)]
    _check_standardised(splits, 43)
    assert not _rows(splits.train) & _rows(splits.validation)
    val = np.load(data.data_dir() / "miniboone" / "val.npy")
    assert len(_rows(np.concatenate(splits[:2]))) == len(val) == 3284
    assert _equal(splits, miniboone(seed=0))
    other = miniboone(seed=1)
    assert not np.array_equal(splits.validation, other.validation)
    assert miniboone(validation_fraction=0.5).validation.shape == (1642, 43)


@pytest.mark.parametrize("bad", ["columns", "rank", "garbage", "object"])
def test_miniboone_bad_file(folder, bad):
    rng = np.random.default_rng(0)
    (folder / "miniboone").mkdir()
    np.save(folder / "miniboone" / "test.npy", rng.normal(size=(50, 43)))
    path = folder / "miniboone" / "val.npy"
    if bad == "columns":
        np.save(path, rng.normal(size=(50, 42)))
    elif bad == "rank":
        np.save(path, rng.normal(size=(50 * 43,)))
    elif bad == "garbage":
        path.write_bytes(b"\x93NUMPY garbage")
    else:
        np.save(path, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="val.npy"):
        miniboone(data_dir=folder)
    np.save(path, rng.normal(size=(50, 43)))
    assert miniboone(data_dir=folder).train.shape == (45, 43)  # the good file loads
    (folder / "miniboone" / "test.npy").unlink()
    with pytest.raises(FileNotFoundError, match="test.npy"):
        miniboone(data_dir=folder)


# --- bsds300 -------------------------------------------------------------------------------------


def test_bsds300(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    splits = bsds300(cache_dir=cache, **SMALL)
    assert [s.shape for s in splits] == [(2000, 63), (200, 63), (500, 63)]
    for s in splits:
        assert s.dtype == np.float32
        assert np.all(np.abs(s) < 1.0)
        # The dropped pixel is minus the sum of the others (each full patch has mean zero).
        assert np.all(np.abs(s.sum(axis=1)) < 1.0)
        assert 0.05 < s.std() < 0.15  # PIL greyscale patches: about 0.089
        assert len(_rows(s)) == len(s)
    # Dequantised: pixels of a patch are not a whole multiple of 1/256 apart.
    steps = (splits.train[:, 0] - splits.train[:, 1]) * 256
    assert np.mean(np.abs(steps - np.round(steps)) > 1e-3) > 0.95
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and "2000" in files[0].name and "seed0" in files[0].name

    def no_decoding(*args, **kwargs):
        raise AssertionError("the images were decoded again instead of read from the cache")

    monkeypatch.setattr(data, "_read_images", no_decoding)
    assert _equal(splits, bsds300(cache_dir=cache, **SMALL))
    assert _equal(splits, load("bsds300", cache_dir=cache, **SMALL))
    monkeypatch.undo()

    other = bsds300(cache_dir=cache, seed=1, **SMALL)
    assert not np.array_equal(splits.train, other.train)
    smaller = bsds300(cache_dir=cache, num_train=1000, num_validation=200, num_test=500)
    assert np.array_equal(smaller.test, splits.test)  # each split has its own random stream
    assert np.array_equal(smaller.validation, splits.validation)
    assert len(list(cache.glob("*.npz"))) == 3


def test_bsds300_rotation_and_bad_images(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "BSDS300"
    for split, count in (("train", 200), ("test", 100)):
        (root / "images" / split).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "images" / split / f"{i}.jpg")
    (root / "ROTATED_TRAIN.txt").write_text("# comment\nimages/train/3.jpg\n")
    images = data._read_images(root / "images" / "train", 200, {"3.jpg"})
    assert images[0].shape == (10, 12) and images[0].dtype == np.uint8
    rotated = dict(zip(sorted(p.name for p in (root / "images" / "train").glob("*.jpg")),
                       images, strict=True))["3.jpg"]
    original = np.asarray(Image.open(root / "images" / "train" / "3.jpg").convert("L"))
    np.testing.assert_array_equal(rotated, np.rot90(original, k=1))

    splits = bsds300(data_dir=tmp_path, cache_dir=tmp_path / "cache", num_train=50,
                     num_validation=10, num_test=20)
    assert [s.shape for s in splits] == [(50, 63), (10, 63), (20, 63)]

    (root / "images" / "train" / "7.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="7.jpg"):
        bsds300(data_dir=tmp_path, cache_dir=tmp_path / "cache", **SMALL)
    (root / "images" / "train" / "7.jpg").unlink()
    with pytest.raises(ValueError, match="expected 200"):
        bsds300(data_dir=tmp_path, cache_dir=tmp_path / "cache", **SMALL)
    (root / "ROTATED_TRAIN.txt").write_text("images/train/missing.jpg\n")
    with pytest.raises(ValueError, match="missing.jpg"):
        bsds300(data_dir=tmp_path, cache_dir=tmp_path / "cache", **SMALL)


# --- digits, load ----------------------------------------------------------------------------


def test_digits():
    splits = digits()
    assert [s.shape for s in splits] == [(1347, 61), (150, 61), (300, 61)]
    _check_standardised(splits, 61)
    assert _equal(splits, digits(seed=0))
    assert not np.array_equal(splits.train, digits(seed=1).train)


def test_load_dispatch():
    assert _equal(load("moons", seed=2, num_train=100, num_validation=10, num_test=20),
                  two_moons(num_train=100, num_validation=10, num_test=20, seed=2))
    assert _equal(load("siggraph", seed=1), siggraph(seed=1))
    assert _equal(load("miniboone", data_dir=data.data_dir()), miniboone())
    assert _equal(load("digits", seed=1, num_test=100), digits(num_test=100, seed=1))
    assert set(DATASETS) == {"moons", "siggraph", "miniboone", "bsds300", "digits"}


def test_load_npy(tmp_path):
    points = np.random.default_rng(0).normal(3.0, 2.0, size=(200, 3))
    np.save(tmp_path / "points.npy", points)
    splits = load(str(tmp_path / "points.npy"), seed=0)
    assert [s.shape for s in splits] == [(160, 3), (20, 3), (20, 3)]
    _check_standardised(splits, 3)
    assert _equal(splits, load(str(tmp_path / "points.npy"), seed=0))
    assert not np.array_equal(splits.test, load(str(tmp_path / "points.npy"), seed=1).test)

    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"\[num_points, num_dims\].*\(2, 3, 4\)"):
        load(str(tmp_path / "cube.npy"))
    with pytest.raises(FileNotFoundError, match="absent.npy"):
        load(str(tmp_path / "absent.npy"))


def test_load_unknown_name():
    with pytest.raises(ValueError) as info:
        load("mnist")
    for name in DATASETS:
        assert name in str(info.value)


# --- a user's file of points (.npy, .npz, .csv), checked before use ------------------------------


def _points(rows: int = 200, dims: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(3.0, 2.0, size=(rows, dims))


def test_load_csv_with_and_without_a_header(tmp_path):
    points = _points()
    np.save(tmp_path / "points.npy", points)
    np.savetxt(tmp_path / "plain.csv", points, delimiter=",")
    np.savetxt(tmp_path / "named.csv", points, delimiter=",", header="a,b,c", comments="")
    reference = load(str(tmp_path / "points.npy"))
    # The header is not a row; without one, the first row is data (200 rows either way).
    assert _equal(load(str(tmp_path / "plain.csv")), reference)
    assert _equal(load(str(tmp_path / "named.csv")), reference)
    np.savetxt(tmp_path / "one.csv", points[:, :1], delimiter=",", header="x", comments="")
    assert [s.shape for s in load(str(tmp_path / "one.csv"))] == [(160, 1), (20, 1), (20, 1)]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(ValueError, match=r"bad.csv is not a readable CSV file of numbers "
                                         r"\(ValueError: .*oops"):
        load(str(tmp_path / "bad.csv"))
    (tmp_path / "ragged.csv").write_text("a,b,c\n" + "1,2\n" * 20)
    with pytest.raises(ValueError, match="its header names 3 columns, its rows hold 2"):
        load(str(tmp_path / "ragged.csv"))


def test_load_npz_by_key(tmp_path):
    points = _points()
    np.save(tmp_path / "points.npy", points)
    np.savez(tmp_path / "one.npz", points=points)
    np.savez(tmp_path / "several.npz", a=points, b=points[:, :2])
    reference = load(str(tmp_path / "points.npy"))
    assert _equal(load(str(tmp_path / "one.npz")), reference)  # one array: no key needed
    assert _equal(load(str(tmp_path / "several.npz"), key="a"), reference)
    assert load(str(tmp_path / "several.npz"), key="b").train.shape == (160, 2)
    several = tmp_path / "several.npz"
    with pytest.raises(ValueError) as info:
        load(str(several))
    assert str(info.value) == (f"{several} holds 2 arrays ('a', 'b'); choose one with "
                               f"--data-key NAME")
    with pytest.raises(ValueError, match="has no array 'c'; its arrays are 'a', 'b'"):
        load(str(several), key="c")
    with pytest.raises(ValueError, match=r"names an array of an .npz file; .*points.npy"):
        load(str(tmp_path / "points.npy"), key="a")


def test_non_finite_rows_are_counted_or_dropped(tmp_path):
    points = _points()
    points[[7, 50, 51], [0, 2, 1]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "points.npy"
    np.save(path, points)
    with pytest.raises(ValueError) as info:
        load(str(path))
    assert str(info.value) == (f"{path} has NaN or inf in 3 of its 200 rows (the first is row 7, "
                               f"counting from 0); remove those rows, or drop them with "
                               f"--drop-nonfinite")
    said = []
    splits = load(str(path), drop_nonfinite=True, report=said.append)
    assert said == [f"dropped 3 of the 200 rows of {path}: they hold NaN or inf"]
    assert sum(len(s) for s in splits) == 197 and all(np.all(np.isfinite(s)) for s in splits)
    with pytest.warns(UserWarning, match="dropped 3 of the 200 rows"):
        load(str(path), drop_nonfinite=True)  # in Python, by default a warning


def test_constant_columns_are_named(tmp_path):
    points = _points(dims=4)
    points[:, 1] = 5.0
    np.save(tmp_path / "points.npy", points)
    with pytest.raises(ValueError, match=r"points.npy: column 1 holds one value \(5\) in every "
                                         r"row; drop it \(a flow needs spread in every column\)"):
        load(str(tmp_path / "points.npy"))
    points[:, 3] = 0.0
    np.savetxt(tmp_path / "named.csv", points, delimiter=",", header="a,b,c,d", comments="")
    with pytest.raises(ValueError, match=r"named.csv: columns 1 \('b'\), 3 \('d'\) each hold one "
                                         r"value in every row; drop them"):
        load(str(tmp_path / "named.csv"))
    # Constant in the training rows only: as degenerate for the fit, and said so.
    points = _points(rows=20, dims=2)
    points[:, 1] = 1.0
    points[np.random.default_rng(0).permutation(20)[0], 1] = 2.0  # a test row (seed 0)
    np.save(tmp_path / "almost.npy", points)
    with pytest.raises(ValueError, match=r"the training split of .*almost.npy: column 1 holds"):
        load(str(tmp_path / "almost.npy"))


def test_too_few_rows_for_the_split_or_the_batch(tmp_path):
    path = tmp_path / "points.npy"
    np.save(path, _points(rows=9))
    with pytest.raises(ValueError) as info:
        load(str(path))
    assert str(info.value) == (f"{path} has 9 rows; it needs at least 10 to split them 80/10/10 "
                               f"into training, validation and test rows")
    np.save(path, _points(rows=247))
    with pytest.raises(ValueError, match=r"has 247 rows; it needs at least 248 for an 80/10/10 "
                                         r"split with one batch of 200 training rows"):
        load(str(path), batch_size=200)
    np.save(path, _points(rows=248))
    assert len(load(str(path), batch_size=200).train) == 200
    for batch_size in range(1, 400):  # the fewest rows that give a batch of training rows
        needed = data._rows_needed(batch_size)
        train = needed - 2 * (needed // 10)
        fewer = needed - 1 - 2 * ((needed - 1) // 10)
        assert train >= batch_size and (needed == 10 or fewer < batch_size)


def test_pickled_and_one_dimensional_arrays_are_refused(tmp_path):
    marker = tmp_path / "marker"
    evil = np.array([_Evil(marker), 1.0], dtype=object)
    np.save(tmp_path / "objects.npy", evil, allow_pickle=True)
    np.savez(tmp_path / "objects.npz", points=evil)
    with open(tmp_path / "pickle.npy", "wb") as f:
        pickle.dump(_Evil(marker), f)
    refused = "refused and never unpickled"
    with pytest.raises(ValueError, match=f"objects.npy holds an object array.*{refused}"):
        load(str(tmp_path / "objects.npy"))
    with pytest.raises(ValueError, match=rf"objects.npz \(array 'points'\) holds an object .*"
                                         rf"{refused}"):
        load(str(tmp_path / "objects.npz"))
    with pytest.raises(ValueError, match=f"pickle.npy is not a NumPy .npy array file: NumPy "
                                         f"would read it as a pickle, {refused}"):
        load(str(tmp_path / "pickle.npy"))
    assert not marker.exists()
    np.save(tmp_path / "flat.npy", np.arange(30.0))
    with pytest.raises(ValueError, match=r"holds a 1-D array of 30 values; data must be 2-D, "
                                         r"\[num_points, num_dims\]: for 30 points of one "
                                         r"dimension, save x.reshape\(-1, 1\)"):
        load(str(tmp_path / "flat.npy"))
    np.save(tmp_path / "column.npy", np.arange(30.0)[:, None])
    assert load(str(tmp_path / "column.npy")).train.shape == (24, 1)
