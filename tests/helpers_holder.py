"""A second process that holds something (a lock, an open file) while a test runs.

Used by the tests that prove a running process is respected (prune, staging reclaim, the
cache lock). The process prints a line once it holds what it holds; the context manager
waits for that line, and on exit kills the process and closes its pipe (an unclosed pipe
is a ResourceWarning, which fails the tests).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def holding(code: str, *args: str, ready: str = "ready") -> Iterator[subprocess.Popen[str]]:
    """Run ``python -c code args...``; yield once it has printed ``ready``; kill it after."""
    with subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == ready, f"the holder process did not start: {line!r} (exit {proc.poll()})"
            yield proc
        finally:
            proc.kill()
            proc.wait()


#: a process that holds a filelock.FileLock on argv[1] (an asset's cache lock)
HOLD_FILELOCK = (
    "import sys,time,filelock; l=filelock.FileLock(sys.argv[1]); l.acquire();"
    "print('ready', flush=True); time.sleep(600)"
)
