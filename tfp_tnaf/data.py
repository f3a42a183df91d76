"""Data sets as float32 train / validation / test arrays.

The files live in a data folder (see `data_dir`), laid out as in `../shared/data`:
`siggraph/siggraph.pkl`, `miniboone/{val,test}.npy`, `BSDS300/images/{train,test}/*.jpg` and
`BSDS300/ROTATED_TRAIN.txt`. Every loader checks what it reads and raises `FileNotFoundError`
(missing file) or `ValueError` (unreadable file, wrong shape) rather than return wrong data.
A user's own file of points (`.npy`, `.npz`, `.csv`) is checked the same way (see `load`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import pathlib
import pickle
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["DATASETS", "DATA_ENV", "FILE_TYPES", "Splits", "bsds300", "data_dir", "digits", "load",
           "miniboone", "siggraph", "standardise", "two_moons"]

DATA_ENV = "TFP_TNAF_DATA"
DATASETS = ("moons", "siggraph", "miniboone", "bsds300", "digits")
FILE_TYPES = (".npy", ".npz", ".csv")  # a user's file of points; see `load`

PathLike = str | os.PathLike
_HOW = (f"pass the data folder as `data_dir=` (`--data-dir` on the command line) or set the "
        f"{DATA_ENV} environment variable")


class Splits(NamedTuple):
    """Train, validation and test arrays of one data set, float32, shape [n, D]."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def standardise(splits: Splits) -> Splits:
    """Centres and scales every split by the training mean and standard deviation."""
    mean = splits.train.mean(axis=0)
    std = splits.train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return Splits(*((s - mean) / std for s in splits))


def _float32(splits: Splits) -> Splits:
    return Splits(*(np.ascontiguousarray(s, dtype=np.float32) for s in splits))


def _split(points: np.ndarray, num_validation: int, num_test: int,
           seed: int | np.random.Generator) -> Splits:
    """Shuffles `points` with `seed`; test and validation first, the rest is train."""
    if num_validation < 1 or num_test < 1 or num_validation + num_test >= len(points):
        raise ValueError(f"cannot split {len(points)} points into {num_validation} validation, "
                         f"{num_test} test and at least one training point")
    points = points[np.random.default_rng(seed).permutation(len(points))]
    test, validation = points[:num_test], points[num_test:num_test + num_validation]
    return Splits(points[num_test + num_validation:], validation, test)


def two_moons(num_train: int = 10_000, num_validation: int = 1_000, num_test: int = 5_000,
              noise: float = 0.05, seed: int = 0) -> Splits:
    """Two Moons (`sklearn.datasets.make_moons`), standardised with training statistics."""
    from sklearn.datasets import make_moons

    total = num_train + num_validation + num_test
    points, _ = make_moons(total, noise=noise, random_state=seed)
    points = points.astype(np.float32)
    splits = Splits(points[:num_train], points[num_train:num_train + num_validation],
                    points[num_train + num_validation:])
    return Splits(*(s.astype(np.float32) for s in standardise(splits)))


# ---------------------------------------------------------------------------------------------
# The data folder.


def data_dir(path: PathLike | None = None) -> pathlib.Path:
    """The data folder: `path`; else `$TFP_TNAF_DATA`; else the first existing of
    `<repository>/../shared/data`, `<cwd>/../shared/data` and `<cwd>/shared/data`."""
    if path is not None:
        tried = [(pathlib.Path(path).expanduser(), "the data_dir argument")]
    elif os.environ.get(DATA_ENV):
        tried = [(pathlib.Path(os.environ[DATA_ENV]).expanduser(), f"${DATA_ENV}")]
    else:
        repo, cwd = pathlib.Path(__file__).resolve().parent.parent, pathlib.Path.cwd()
        tried = [(p, "default") for p in (repo.parent / "shared" / "data",
                                          cwd.parent / "shared" / "data", cwd / "shared" / "data")]
    for candidate, _ in tried:
        if candidate.is_dir():
            return candidate
    listed = ", ".join(f"{p} ({source})" for p, source in tried)
    raise FileNotFoundError(f"no data folder found; tried: {listed}. To choose one, {_HOW}.")


def _file(root: PathLike | None, *parts: str) -> pathlib.Path:
    path = data_dir(root).joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}. To use another data folder, {_HOW}.")
    return path


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numbers only: every global (class, function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _finite_rows(points: np.ndarray, source: str, drop: bool = False,
                 report: Callable[[str], None] | None = None) -> np.ndarray:
    """`points` [n, D] if every value is finite; else an error saying how many rows hold NaN or
    inf and the first of them, or, with `drop`, the other rows (and `report` says how many
    were dropped)."""
    bad = ~np.all(np.isfinite(points), axis=1)
    count = int(bad.sum())
    if not count:
        return points
    if not drop:
        raise ValueError(f"{source} has NaN or inf in {count} of its {len(points)} rows (the first "
                         f"is row {int(np.argmax(bad))}, counting from 0); remove those rows, or "
                         f"drop them with --drop-nonfinite")
    (report or _warn)(f"dropped {count} of the {len(points)} rows of {source}: "
                      f"they hold NaN or inf")
    return points[~bad]


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=5)  # the caller of `load`


# ---------------------------------------------------------------------------------------------
# Data sets.


def siggraph(data_dir: PathLike | None = None, num_validation: int = 1000, num_test: int = 1000,
             seed: int = 0) -> Splits:
    """The 9,800-point 2-D "SIGGRAPH" cloud of the TFP normalizing-flows tutorial.

    Loads `siggraph/siggraph.pkl` (a pickle of a list of float pairs, read without running code),
    shuffles it with `seed`, splits it and standardises it with training statistics.
    """
    path = _file(data_dir, "siggraph", "siggraph.pkl")
    try:
        with open(path, "rb") as f:
            content = _NoGlobalsUnpickler(f).load()
    except Exception as err:  # garbage can raise almost anything; none of it is usable data
        raise ValueError(f"{path} is not a readable pickle of a list of float pairs "
                         f"({type(err).__name__}: {err})") from err
    expected = f"{path} must hold a list of (x, y) float pairs"
    if not isinstance(content, list | tuple) or not all(
            isinstance(p, list | tuple) and len(p) == 2
            and all(isinstance(v, float | int) and not isinstance(v, bool) for v in p)
            for p in content):
        raise ValueError(f"{expected}; found {type(content).__name__} with other content")
    points = _finite_rows(np.asarray(content, dtype=np.float64).reshape(-1, 2), str(path))
    return _float32(standardise(_split(points, num_validation, num_test, seed)))


_REFUSED = "refused and never unpickled (allow_pickle=False: unpickling can run code)"


def _read(source: str, kind: str, read: Callable[[], Any]) -> Any:
    """`read()`, any failure a one-line ValueError naming `source` and the `kind` of file
    expected. NumPy refuses pickled data (allow_pickle=False): that is said plainly."""
    try:
        return read()
    except Exception as err:  # a broken file can raise almost anything; none of it is data
        text = str(err).strip()
        if text.startswith("Object arrays"):
            raise ValueError(f"{source} holds an object array (pickled Python objects), "
                             f"{_REFUSED}; save an array of numbers") from err
        if "pickled" in text:
            raise ValueError(f"{source} is not a NumPy {kind}: NumPy would read it as a pickle, "
                             f"{_REFUSED}") from err
        first = (text.splitlines() or [""])[0]
        raise ValueError(f"{source} is not a readable {kind} ({type(err).__name__}: "
                         f"{first})") from err


def _read_npy(path: pathlib.Path) -> np.ndarray:
    def read() -> np.ndarray:
        array = np.load(path, allow_pickle=False)
        if not isinstance(array, np.ndarray):
            array.close()
            raise ValueError("it is an .npz archive: name it .npz")
        return array

    return _read(str(path), ".npy array file", read)


def _matrix(array: np.ndarray, source: str) -> np.ndarray:
    """`array` as float64 [num_points, num_dims]: 2-D and real. A 1-D array is refused, not
    guessed at: it may be n points of one dimension or a flattened [n, D] array."""
    if array.ndim == 1:
        raise ValueError(f"{source} holds a 1-D array of {len(array)} values; data must be 2-D, "
                         f"[num_points, num_dims]: for {len(array)} points of one dimension, "
                         f"save x.reshape(-1, 1)")
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"{source} must hold a 2-D array of shape [num_points, num_dims]; "
                         f"found shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{source} must hold real numbers; found dtype {array.dtype}")
    return array.astype(np.float64)


def _load_npy(path: pathlib.Path) -> np.ndarray:
    """A `.npy` file of finite real numbers [num_points, num_dims], as float64."""
    return _finite_rows(_matrix(_read_npy(path), str(path)), str(path))


def miniboone(data_dir: PathLike | None = None, validation_fraction: float = 0.1,
              seed: int = 0) -> Splits:
    """MINIBOONE (43 dims) from the MAF-preprocessed `miniboone/val.npy` and `test.npy`.

    **The MAF training split (29,556 rows) is not available**: train and validation here are a
    seeded split of MAF's 3,284-row *validation* split (`validation_fraction` of it goes to
    validation), and test is MAF's 3,648-row test split. Everything is standardised with the
    training statistics. Log-likelihoods are therefore NOT comparable with published MINIBOONE
    results (MAF -11.75, NAF -8.86, B-NAF -8.95 nats): say so wherever they are reported.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1); got {validation_fraction}")
    arrays = []
    for name in ("val.npy", "test.npy"):
        path = _file(data_dir, "miniboone", name)
        array = _load_npy(path)
        if array.shape[1] != 43 or len(array) < 2:
            raise ValueError(f"{path} must hold MINIBOONE rows of shape [num_points, 43]; "
                             f"found shape {array.shape}")
        arrays.append(array)
    val, test = arrays
    num_validation = max(1, int(round(validation_fraction * len(val))))
    if num_validation >= len(val):
        raise ValueError(f"validation_fraction={validation_fraction} leaves no training rows")
    val = val[np.random.default_rng(seed).permutation(len(val))]
    return _float32(standardise(Splits(val[num_validation:], val[:num_validation], test)))


def _default_cache_dir() -> pathlib.Path:
    root = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(root) / "tfp_tnaf" / "bsds300_cache"


def _read_images(folder: pathlib.Path, expected: int, rotated: set[str]) -> list[np.ndarray]:
    from PIL import Image

    paths = sorted(folder.glob("*.jpg"))
    if not paths:
        raise FileNotFoundError(f"no BSDS300 JPEGs (*.jpg) in {folder}. "
                                f"To use another data folder, {_HOW}.")
    if len(paths) != expected:
        raise ValueError(f"expected {expected} BSDS300 JPEGs in {folder}, found {len(paths)}")
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("L"))
        except Exception as err:
            raise ValueError(f"{path} is not a readable JPEG image "
                             f"({type(err).__name__}: {err})") from err
        if pixels.ndim != 2 or min(pixels.shape) < 8:
            raise ValueError(f"{path} must be an image of at least 8x8 pixels; "
                             f"found shape {pixels.shape}")
        images.append(np.rot90(pixels, k=1) if path.name in rotated else pixels)
    return images


def _patches(images: list[np.ndarray], num: int, rng: np.random.Generator) -> np.ndarray:
    """`num` dequantised, centred 8x8 patches (last pixel dropped) from uniformly chosen
    images at uniform positions."""
    out = np.empty((num, 63), np.float32)
    which = rng.integers(len(images), size=num)
    for i, image in enumerate(images):
        rows = np.flatnonzero(which == i)
        if not len(rows):
            continue
        windows = np.lib.stride_tricks.sliding_window_view(image, (8, 8))
        r = rng.integers(windows.shape[0], size=len(rows))
        c = rng.integers(windows.shape[1], size=len(rows))
        patch = windows[r, c].reshape(len(rows), 64).astype(np.float32)
        patch += rng.random(patch.shape, dtype=np.float32)
        patch /= 256.0
        patch -= patch.mean(axis=1, keepdims=True)
        out[rows] = patch[:, :63]
    return out


def bsds300(data_dir: PathLike | None = None, num_train: int = 1_000_000,
            num_validation: int = 50_000, num_test: int = 250_000, seed: int = 0,
            cache_dir: PathLike | None = None) -> Splits:
    """BSDS300 8x8 greyscale patches (63 dims), rebuilt from the photographs by the MAF recipe.

    Greyscale by PIL `convert("L")`; the 63 train images listed in `BSDS300/ROTATED_TRAIN.txt`
    are turned back with `np.rot90(img, k=1)`; patches are cut from uniformly chosen images at
    uniform positions; each integer pixel gets U[0, 1) noise and is divided by 256; each patch's
    mean is subtracted and its last (bottom-right) pixel dropped. Train and validation come from
    the 200 train images, test from the 100 test images; each split has its own random stream
    (from `seed`), so one split does not depend on the sizes of the others. Not standardised.

    The result is close to, not identical with, MAF's published BSDS300: the train JPEGs here
    were re-encoded, and MAF's RNG and greyscale conversion are undocumented. Say so wherever
    results are reported. The arrays are cached as an `.npz` in `cache_dir` (default
    `$XDG_CACHE_HOME/tfp_tnaf/bsds300_cache`, or `~/.cache/tfp_tnaf/bsds300_cache`).
    """
    if min(num_train, num_validation, num_test) < 1:
        raise ValueError("num_train, num_validation and num_test must be positive")
    listing = _file(data_dir, "BSDS300", "ROTATED_TRAIN.txt")
    root = listing.parent
    try:
        lines = listing.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{listing} is not a readable text file ({err})") from err
    # One path per line (relative to BSDS300/, e.g. `images/train/100080.jpg`); `#` comments.
    rotated = {pathlib.PurePosixPath(s.strip()).name for s in lines
               if s.strip() and not s.lstrip().startswith("#")}
    missing = sorted(n for n in rotated if not (root / "images" / "train" / n).is_file())
    if missing:
        raise ValueError(f"{listing} lists train images that are not in {root / 'images/train'}: "
                         f"{missing[:5]}")

    folders = [root / "images" / "train", root / "images" / "test"]
    fingerprint = hashlib.sha1(("v1\n" + "\n".join(sorted(rotated))).encode())
    for folder in folders:
        for path in sorted(folder.glob("*.jpg")):
            fingerprint.update(f"{folder.name}/{path.name}:{path.stat().st_size}\n".encode())
    cache = pathlib.Path(cache_dir).expanduser() if cache_dir else _default_cache_dir()
    cache_file = cache / (f"bsds300_train{num_train}_validation{num_validation}_test{num_test}"
                          f"_seed{seed}_{fingerprint.hexdigest()[:10]}.npz")
    sizes = {"train": num_train, "validation": num_validation, "test": num_test}
    if cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as f:
                splits = Splits(*(f[k] for k in Splits._fields))
        except Exception as err:
            raise ValueError(f"cannot read the BSDS300 cache {cache_file} ({err}); delete it to "
                             f"rebuild it") from err
        if any(s.shape != (sizes[k], 63) or s.dtype != np.float32
               for k, s in zip(Splits._fields, splits, strict=True)):
            raise ValueError(f"the BSDS300 cache {cache_file} has unexpected shapes; delete it")
        return splits

    train_images = _read_images(folders[0], 200, rotated)
    test_images = _read_images(folders[1], 100, set())
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]
    splits = Splits(_patches(train_images, num_train, streams[0]),
                    _patches(train_images, num_validation, streams[1]),
                    _patches(test_images, num_test, streams[2]))
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as f:
        np.savez(f, **splits._asdict())
    os.replace(partial, cache_file)  # atomic: a reader never sees half a file
    return splits


def digits(num_validation: int = 150, num_test: int = 300, seed: int = 0) -> Splits:
    """The 8x8 handwritten digits of `sklearn.datasets.load_digits` (1,797 images).

    Dequantised with U[0, 1) noise, constant pixels (over the whole set) dropped (61 dims
    remain), shuffled and split with `seed`, standardised with training statistics.
    """
    from sklearn.datasets import load_digits

    pixels = load_digits().data
    pixels = pixels[:, pixels.min(axis=0) < pixels.max(axis=0)]
    rng = np.random.default_rng(seed)
    points = pixels + rng.random(pixels.shape)
    return _float32(standardise(_split(points, num_validation, num_test, rng)))


# ---------------------------------------------------------------------------------------------
# A user's file of points, checked before use.


def _numbers(row: list[str]) -> bool:
    try:
        [float(value) for value in row]
    except ValueError:
        return False
    return True


def _read_csv(path: pathlib.Path) -> tuple[np.ndarray, list[str] | None]:
    """A comma-separated file of numbers and its column names: its first row if that row does
    not parse as numbers (a header), else None."""
    def first_row() -> list[str]:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])

    first = _read(str(path), "CSV file", first_row)
    names = None if _numbers(first) else [name.strip() for name in first]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no rows: said by the check of the number of rows
        array = _read(str(path), "CSV file of numbers", lambda: np.loadtxt(
            path, delimiter=",", skiprows=int(names is not None), ndmin=2, quotechar='"',
            encoding="utf-8-sig"))
    if names is not None and len(array) and len(names) != array.shape[1]:
        raise ValueError(f"{path}: its header names {len(names)} columns, its rows hold "
                         f"{array.shape[1]}")
    return array, names


def _read_npz(path: pathlib.Path, key: str | None) -> tuple[np.ndarray, str]:
    """The array `key` of an `.npz` archive (its only array if `key` is None) and its name."""
    archive = _read(str(path), ".npz archive", lambda: np.load(path, allow_pickle=False))
    if isinstance(archive, np.ndarray):
        raise ValueError(f"{path} holds one .npy array, not an .npz archive: name it .npy")
    with archive:
        keys = list(archive.files)
        listed = ", ".join(repr(k) for k in keys)
        if key is None and len(keys) != 1:
            raise ValueError(f"{path} holds no arrays" if not keys else
                             f"{path} holds {len(keys)} arrays ({listed}); choose one with "
                             f"--data-key NAME")
        key = keys[0] if key is None else key
        if key not in keys:
            raise ValueError(f"{path} has no array {key!r}; its arrays are {listed}")
        return _read(f"{path} (array {key!r})", "array", lambda: archive[key]), key


def _read_points(path: pathlib.Path, key: str | None
                 ) -> tuple[np.ndarray, str, list[str] | None]:
    """The array of a user's file, its name in messages and its column names (CSV header)."""
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        array, key = _read_npz(path, key)
        return array, f"{path} (array {key!r})", None
    if suffix == ".csv":
        array, names = _read_csv(path)
        return array, str(path), names
    return _read_npy(path), str(path), None


def _rows_needed(batch_size: int) -> int:
    """The fewest rows whose 80/10/10 split (`_file_splits`) holds a batch of training rows."""
    rows = max(10, batch_size)
    while rows - 2 * (rows // 10) < batch_size:
        rows += 1
    return rows


def _enough_rows(num_rows: int, batch_size: int, source: str) -> None:
    needed = _rows_needed(batch_size)
    if num_rows >= needed:
        return
    why = ("to split them 80/10/10 into training, validation and test rows" if needed == 10
           else f"for an 80/10/10 split with one batch of {batch_size} training rows (pass a "
                f"smaller --batch-size to need fewer)")
    raise ValueError(f"{source} has {num_rows} rows; it needs at least {needed} {why}")


def _varying_columns(points: np.ndarray, source: str, names: list[str] | None = None) -> None:
    """An error naming every constant column of `points` [n >= 1, D]: a flow's density of a
    column without spread is degenerate."""
    constant = np.flatnonzero(np.all(points == points[:1], axis=0))
    if not constant.size:
        return
    listed = ", ".join(str(k) if names is None else f"{k} ({names[k]!r})" for k in constant)
    what = (f"column {listed} holds one value ({points[0, constant[0]]:g}) in every row; drop it"
            if constant.size == 1 else f"columns {listed} each hold one value in every row; "
                                       f"drop them")
    raise ValueError(f"{source}: {what} (a flow needs spread in every column)")


def _file_splits(path: pathlib.Path, seed: int = 0, key: str | None = None,
                 drop_nonfinite: bool = False, batch_size: int = 1,
                 report: Callable[[str], None] | None = None) -> Splits:
    """A user's file of points, checked, shuffled, split 80/10/10 and standardised."""
    array, source, names = _read_points(path, key)
    points = _finite_rows(_matrix(array, source), source, drop_nonfinite, report)
    _enough_rows(len(points), batch_size, source)
    _varying_columns(points, source, names)
    num = len(points) // 10
    splits = _split(points, num, num, seed)
    _varying_columns(splits.train, f"the training split of {source}", names)
    return _float32(standardise(splits))


def load(name: str, data_dir: PathLike | None = None, seed: int = 0, *,
         key: str | None = None, drop_nonfinite: bool = False, batch_size: int = 1,
         report: Callable[[str], None] | None = None, **sizes: Any) -> Splits:
    """Loads a data set by name (one of `DATASETS`) or from a file of points (`FILE_TYPES`).

    A file holds points `[num_points, num_dims]`: a `.npy` array; an `.npz` archive's array
    `key` (`key` may be left out when it holds one array); or a `.csv` of numbers, with or
    without a header row (a first row that does not parse as numbers names the columns). A
    1-D array is refused (it may be n points or one flattened point): save one dimension as
    `[n, 1]`; a one-column CSV is `[n, 1]`. Pickled (object) arrays are refused and never
    unpickled. The file must hold real numbers, no NaN or inf (`drop_nonfinite=True` drops
    such rows and tells `report`, by default a `UserWarning`), no constant column, and at least
    10 rows, and enough that the training split holds one batch of `batch_size`. It is then
    shuffled with `seed`, split 80/10/10 (train, validation, test) and standardised with the
    training statistics.

    `**sizes` go to a named data set's loader, e.g. `load("bsds300", num_train=100_000)`.

    Raises:
      FileNotFoundError: a missing file or data folder.
      ValueError: an unknown name, or a file that fails a check (the message says which).
    """
    name = os.fspath(name)
    if key is not None and not name.lower().endswith(".npz"):
        raise ValueError(f"--data-key (key=) names an array of an .npz file; {name!r} is not one")
    if name.lower().endswith(FILE_TYPES):
        return _file_splits(pathlib.Path(name).expanduser(), seed, key, drop_nonfinite,
                            batch_size, report, **sizes)
    loaders: dict[str, Callable[..., Splits]] = {
        "moons": two_moons, "siggraph": siggraph, "miniboone": miniboone, "bsds300": bsds300,
        "digits": digits}
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)} "
                         f"or give a file ending in {', '.join(FILE_TYPES)}")
    if name in ("moons", "digits"):
        return loaders[name](seed=seed, **sizes)
    return loaders[name](data_dir=data_dir, seed=seed, **sizes)
