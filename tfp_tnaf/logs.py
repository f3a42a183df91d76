"""TensorFlow's C++ logs, kept out of the command line's output and the tutorials.

TensorFlow 2.21 writes a few lines while it is imported (oneDNN, the CUDA
stub, absl's "All log messages before absl::InitializeLog() is called") to the
standard error before it reads `TF_CPP_MIN_LOG_LEVEL`, so the variable alone
does not silence them. `quiet_tensorflow()` sets the variable and imports
TensorFlow with those lines filtered at the same level:

```python
from tfp_tnaf.logs import quiet_tensorflow
quiet_tensorflow()        # before anything imports TensorFlow
import tensorflow as tf   # already imported, quietly
```

This module imports nothing but the standard library (nor does the package's
root), so it can run before TensorFlow is imported.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["LOG_LEVEL", "drop_logs", "quiet_tensorflow"]

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"

# One line of TensorFlow's C++ logging (absl's format): severity, date, time,
# thread, file:line]. The severities in the order TF_CPP_MIN_LOG_LEVEL counts them.
_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+\] ")
_SEVERITIES = "IWEF"
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"


def quiet_tensorflow(level: int = 3) -> None:
    """Keeps TensorFlow's C++ logs below `level` out of this process's output.

    `level` counts as `TF_CPP_MIN_LOG_LEVEL` does (1: no INFO, 2: no WARNING
    either, 3: no ERROR either); a value already in the environment wins.
    Call it before TensorFlow is imported: it sets the variable and imports
    TensorFlow, dropping the start-up lines below that level that TensorFlow
    writes before it reads the variable (other output of the import is kept).
    Once TensorFlow is imported it does nothing.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault(LOG_LEVEL, str(level))
    minimum = _level(os.environ[LOG_LEVEL])
    with _filtered_stderr(minimum):
        import tensorflow  # noqa: F401


def drop_logs(text: str, minimum: int = 3) -> str:
    """`text` without its C++ log lines below severity `minimum` (counted as
    `TF_CPP_MIN_LOG_LEVEL` counts) and, when `minimum` > 0, absl's preamble:
    what `quiet_tensorflow` drops. Every other line is kept."""
    kept = []
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match and _SEVERITIES.index(match.group(1)) < minimum:
            continue
        if minimum > 0 and line.startswith(_ABSL_PREAMBLE):
            continue
        kept.append(line)
    return "".join(kept)


def _level(value: str) -> int:
    try:
        return max(0, int(value))
    except ValueError:
        return 0


@contextlib.contextmanager
def _filtered_stderr(minimum: int) -> Iterator[None]:
    """Sends file descriptor 2 to a temporary file for the block (C++ writes there
    directly), then writes what it caught, less the noise, to `sys.stderr`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = drop_logs(caught.read().decode(errors="replace"), minimum)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
