"""Progress of uploads and downloads, drawn from the library's fsspec ``Callback`` events.

The library reports a transfer as one callback per call (``set_size(number of files)``,
``relative_update(1)`` per file done) with a branch per file (``set_size(bytes)``,
``relative_update(bytes)``). ``Transfer`` turns those events into

- ``rich``: one ``Progress`` (as rich's ``examples/downloader.py``): a total row with the
  bar, bytes, speed, time left and files done, and a row per file in flight;
- ``plain``: a line when the transfer starts and one when it ends (stderr is piped);
- ``off``: nothing (``--quiet``).

fsspec and rich are imported only when the first event arrives, through
``DeferredCallback``: a cache hit never sends one, so it never pays for either import.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast

import typer

if TYPE_CHECKING:
    from fsspec.callbacks import Callback
    from rich.console import Console
    from rich.progress import Progress, TaskID

Direction = Literal["upload", "download"]
#: rows shown for files in flight (many concurrent files would bury the total)
MAX_FILE_ROWS = 4


def human_size(size: float | None) -> str:
    """``12.3 MB`` (decimal units, as rich's ``DownloadColumn``)."""
    if size is None:
        return "? B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


class DeferredCallback:
    """Stands in for an fsspec ``Callback`` until the first event, then forwards to the
    one ``factory`` builds; before that, neither fsspec nor rich is imported."""

    def __init__(self, factory: Callable[[], Callback]) -> None:
        self._factory = factory
        self._real: Callback | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._real is not None

    def _get(self) -> Callback:
        if self._real is None:
            with self._lock:
                if self._real is None:
                    self._real = self._factory()
        return self._real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._get(), name)

    def __enter__(self) -> Callback:
        return self._get()

    def __exit__(self, *exc: object) -> None:
        self._get().close()


class Transfer:
    """The display of one upload or download.

    Parameters
    ----------
    mode
        ``rich``, ``plain`` or ``off``.
    label
        What moves, e.g. ``nlp/tokenizer:0.1``.
    direction
        ``upload`` (the local side of a file is the source) or ``download``.
    total_bytes, total_files
        Known totals (a publish plan has them); otherwise they are learnt from the events.
    console
        Where rich draws (stderr by default).
    """

    def __init__(
        self,
        mode: Literal["rich", "plain", "off"],
        label: str,
        direction: Direction,
        *,
        total_bytes: int | None = None,
        total_files: int | None = None,
        console: Console | None = None,
    ) -> None:
        self.mode = mode
        self.label = label
        self.direction = direction
        self.total_bytes = total_bytes
        self.total_files = total_files
        self.files_done = 0
        self.bytes_done = 0
        self.reused_bytes = 0
        self.reused_files = 0
        self._learnt_bytes = 0
        self._console = console
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._total_task: TaskID | None = None
        self._file_rows = 0
        self._started_at: float | None = None
        self._deferred = DeferredCallback(self._start)

    @property
    def callback(self) -> Callback | None:
        """What to pass as ``callback=`` (``None`` when nothing is shown)."""
        if self.mode == "off":
            return None
        return cast("Callback", self._deferred)

    @property
    def verb(self) -> str:
        return "Uploading" if self.direction == "upload" else "Downloading"

    # -- life cycle -------------------------------------------------------------
    def _start(self) -> Callback:
        self._started_at = time.monotonic()
        if self.mode == "rich":
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}", style="bold"),
                BarColumn(bar_width=None),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[files]}"),
                console=self._console,
                transient=False,
                expand=True,
            )
            self._progress.start()
            self._total_task = self._progress.add_task(
                f"{self.verb} {self.label}", total=self.total_bytes, files=self._files_text()
            )
        elif self.mode == "plain":
            what = f" ({self._files_text()}, {human_size(self.total_bytes)})" if self.total_files else ""
            typer.echo(f"{self.verb} {self.label}{what}...", err=True)
        return _callback_class()(self)

    def __enter__(self) -> Transfer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.close(success=exc_type is None)

    def close(self, *, success: bool = True) -> None:
        """Stop drawing; the summary line is printed only for a completed transfer."""
        if not self._deferred.started:
            return
        if self._progress is not None:
            if success and self._total_task is not None:
                # what actually moved (the store may have copied unchanged files itself)
                moved = self.bytes_done or self._learnt_bytes
                self._progress.update(
                    self._total_task, total=moved, completed=moved, files=self._files_text()
                )
            self._progress.stop()
            self._progress = None
        elif self.mode == "plain" and success:
            elapsed = max(time.monotonic() - (self._started_at or time.monotonic()), 1e-6)
            size = self.bytes_done
            reused = f"; {self._reused_text()}" if self.reused_bytes else ""
            typer.echo(
                f"{self.verb[:-3]}ed {self.label}: {self._files_text()}, {human_size(size)} in "
                f"{elapsed:.1f} s ({human_size(size / elapsed)}/s){reused}.",
                err=True,
            )

    # -- events (called from the library's worker threads) -------------------------
    def _files_text(self) -> str:
        if self.total_files is None:
            return f"{self.files_done} files"
        return f"{self.files_done}/{self.total_files} files"

    def set_files(self, count: int | None) -> None:
        with self._lock:
            if count is not None and self.total_files is None:
                self.total_files = count
            self._refresh()

    def file_done(self, count: int) -> None:
        with self._lock:
            self.files_done += count
            self._refresh()

    def add_bytes(self, count: int) -> None:
        if count <= 0:
            return
        with self._lock:
            self.bytes_done += count
            if self._progress is not None and self._total_task is not None:
                self._progress.advance(self._total_task, count)

    def add_reused(self, count: int, files: int) -> None:
        """Bytes and files a fetch took from the cache's content store instead of the network."""
        with self._lock:
            self.reused_bytes += count
            self.reused_files += files
            if count and self._progress is not None and self._total_task is not None:
                self._progress.update(
                    self._total_task, description=f"{self.verb} {self.label} ({self._reused_text()})"
                )

    def _reused_text(self) -> str:
        files = f" in {self.reused_files} files" if self.reused_files else ""
        return f"{human_size(self.reused_bytes)}{files} reused from the cache"

    def learn_size(self, size: int) -> None:
        """A file's size, when the total was not known up front (downloads)."""
        with self._lock:
            self._learnt_bytes += size
            if self.total_bytes is None and self._progress is not None and self._total_task is not None:
                self._progress.update(self._total_task, total=self._learnt_bytes)

    def _refresh(self) -> None:
        if self._progress is not None and self._total_task is not None:
            self._progress.update(self._total_task, files=self._files_text())

    def open_row(self, path: str) -> TaskID | None:
        with self._lock:
            if self._progress is None or self._file_rows >= MAX_FILE_ROWS:
                return None
            self._file_rows += 1
            name = path.rstrip("/").rsplit("/", 1)[-1]
            total = None
            if self.direction == "upload":  # the local source's size is known before it moves
                try:
                    total = os.path.getsize(path)
                except OSError:
                    total = None
            return self._progress.add_task(f"  {name}", total=total, files="")

    def update_row(self, row: TaskID | None, *, total: int | None = None, advance: int = 0) -> None:
        progress = self._progress
        if row is None or progress is None:
            return
        if total is not None:
            progress.update(row, total=total)
        if advance:
            progress.advance(row, advance)

    def close_row(self, row: TaskID | None) -> None:
        with self._lock:
            if row is None or self._progress is None:
                return
            self._progress.remove_task(row)
            self._file_rows -= 1


_CLASS: type[Callback] | None = None


def _callback_class() -> Callable[[Transfer], Callback]:
    """The fsspec ``Callback`` subclasses, defined on first use (fsspec is imported then)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from fsspec.callbacks import Callback

    class FileCallback(Callback):  # type: ignore[misc]
        """One file: its bytes move the total and, if shown, its own row."""

        def __init__(self, transfer: Transfer, local: str) -> None:
            super().__init__()
            self.transfer = transfer
            self.local = local
            self.row = transfer.open_row(local)
            self.reported = 0
            self.sized = False

        def call(self, hook_name: str | None = None, **kwargs: Any) -> None:
            if self.size is not None and not self.sized:
                self.sized = True
                self.transfer.learn_size(int(self.size))
                self.transfer.update_row(self.row, total=int(self.size))
            delta = int(self.value or 0) - self.reported
            if delta > 0:
                self.reported += delta
                self.transfer.add_bytes(delta)
                self.transfer.update_row(self.row, advance=delta)

        def close(self) -> None:
            # some backends (local disk) copy without reporting bytes: count the file's size
            if self.reported == 0:
                try:
                    size = os.path.getsize(self.local)
                except OSError:
                    size = 0
                if not self.sized:
                    self.transfer.learn_size(size)
                self.reported = size
                self.transfer.add_bytes(size)
            self.transfer.close_row(self.row)
            self.row = None

    class TransferCallback(Callback):  # type: ignore[misc]
        """The whole call: counts files, and hands each file its own callback."""

        def __init__(self, transfer: Transfer) -> None:
            super().__init__()
            self.transfer = transfer
            self.reported = 0

        def call(self, hook_name: str | None = None, **kwargs: Any) -> None:
            if hook_name == "reused":  # files linked from the cache instead of downloaded
                self.transfer.add_reused(int(kwargs.get("bytes", 0)), int(kwargs.get("files", 0)))
                return
            if hook_name == "assembled":  # files completed from blocks kept by lazy reads
                self.transfer.add_bytes(int(kwargs.get("bytes", 0)))
                self.transfer.file_done(int(kwargs.get("files", 0)))
                return
            self.transfer.set_files(int(self.size) if self.size is not None else None)
            delta = int(self.value or 0) - self.reported
            if delta > 0:
                self.reported += delta
                self.transfer.file_done(delta)

        def branched(self, path_1: str, path_2: str, **kwargs: Any) -> Callback:
            local = path_1 if self.transfer.direction == "upload" else path_2
            return FileCallback(self.transfer, local)

    _CLASS = TransferCallback
    return _CLASS
