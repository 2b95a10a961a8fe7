"""Run ``modelkit-assets`` with every file transfer of a local store slowed down.

Used by the terminal tests to press Ctrl-C while an upload or a download is under way,
deterministically: ``CLI_SLOW_TRANSFER_S`` seconds are spent before each file. The CLI
itself (``main()``) runs unchanged.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from modelkit_assets.cli import main

DELAY_S = float(os.environ.get("CLI_SLOW_TRANSFER_S", "0.1"))
_put_file = LocalFileSystem.put_file
_get_file = LocalFileSystem.get_file


def _slow_put(self: LocalFileSystem, *args: Any, **kwargs: Any) -> Any:
    time.sleep(DELAY_S)
    return _put_file(self, *args, **kwargs)


def _slow_get(self: LocalFileSystem, *args: Any, **kwargs: Any) -> Any:
    time.sleep(DELAY_S)
    return _get_file(self, *args, **kwargs)


LocalFileSystem.put_file = _slow_put
LocalFileSystem.get_file = _slow_get

if __name__ == "__main__":
    main()
