"""Run ``modelkit-assets`` with every file transfer of a local store slowed down.

Used by the terminal tests to press Ctrl-C while an upload or a download is under way,
deterministically: ``CLI_SLOW_TRANSFER_S`` seconds are spent before each file. The CLI
itself (``main()``) runs unchanged.
"""

from __future__ import annotations

import os
import time
from typing import Any

from modelkit_assets.backends.local import LocalBackend
from modelkit_assets.cli import main

DELAY_S = float(os.environ.get("CLI_SLOW_TRANSFER_S", "0.1"))
_open_write = LocalBackend.open_write
_open_read = LocalBackend.open_read


def _slow_write(self: LocalBackend, *args: Any, **kwargs: Any) -> Any:
    time.sleep(DELAY_S)
    return _open_write(self, *args, **kwargs)


def _slow_read(self: LocalBackend, *args: Any, **kwargs: Any) -> Any:
    time.sleep(DELAY_S)
    return _open_read(self, *args, **kwargs)


LocalBackend.open_write = _slow_write  # type: ignore[method-assign]
LocalBackend.open_read = _slow_read  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
