"""Files written whole or not at all: write under a temporary name, then rename."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside `path`; on success renames it onto `path`.

    The rename is atomic (`os.replace`, same folder), so a reader sees the old
    file or the new one, never a part of it; a kill leaves at most a hidden
    temporary file. The temporary name keeps `path`'s extension, so writers
    that choose the format by extension (matplotlib, `np.save`) still work.
    On an error the temporary file is removed and the error propagates.

    ```python
    with atomic_path("metrics.json") as temporary, open(temporary, "w") as f:
        json.dump(metrics, f)
    ```
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    extension = os.path.splitext(name)[1]
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.partial{extension}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
