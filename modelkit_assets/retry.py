"""Bounded retries with exponential backoff and full jitter, around every store request.

Object stores fail transiently: a 500 or a 503 ``SlowDown``, a reset connection, a
response cut short, a proxy that stalls. Each request of a publish or a fetch (listings,
claims, commits, metadata reads, one file's transfer) is retried on its own, so one lost
packet never restarts a whole folder. Three bounds keep a dead store from hanging a
command: a number of attempts, a cap on each delay, and a deadline for the whole
operation after which the last error is raised as it is::

    attempt 1 ──fail──> sleep U(0, base)      attempt 2 ──fail──> sleep U(0, 2·base)  ...
                        (never past max_delay_s, never past deadline_s since the start)

The backends retry too (botocore, s3fs, the Azure SDK, gcsfs); ``backends.open_filesystem``
turns their own knobs down where they exist so that the two layers do not multiply.

Only what may succeed on a second try is retried: a ``StoreError`` that is neither a
permission nor a missing-bucket error, and, for transfers only, a file that arrived with
the wrong size or hash (``IntegrityError``: a body cut short). A missing object, an
existing one (exclusive create), a refused credential, a configuration error or a full or
read-only local disk is raised at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from modelkit_assets.errors import (
    AssetsError,
    IntegrityError,
    StoreError,
    StoreNotFoundError,
    StorePermissionError,
)
from modelkit_assets.localdisk import is_disk_error
from modelkit_assets.settings import (
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BASE_DELAY_S,
    DEFAULT_RETRY_DEADLINE_S,
    DEFAULT_RETRY_MAX_DELAY_S,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def is_transient(err: BaseException, *, transfer: bool = False) -> bool:
    """Whether ``err`` may go away on a second try (pure: classifies, never raises).

    ``err`` may be one of our errors or a backend's own exception (inside a transfer,
    before ``store_errors`` translates it). ``transfer`` also counts a file that arrived
    with the wrong size or hash, which a cut-short body produces.
    """
    if isinstance(err, IntegrityError):
        return transfer
    if is_disk_error(err):  # a full or read-only local disk stays so
        return False
    if isinstance(err, StorePermissionError | StoreNotFoundError):
        return False
    if isinstance(err, StoreError):
        return True
    if isinstance(err, AssetsError):
        return False
    if isinstance(
        err, FileNotFoundError | FileExistsError | PermissionError | NotADirectoryError | IsADirectoryError
    ):
        return False
    if not isinstance(err, Exception) or isinstance(err, ValueError | TypeError | NotImplementedError):
        return False
    from modelkit_assets.backends import translate_error

    translated = translate_error(err, "", "")
    return not isinstance(translated, StorePermissionError | StoreNotFoundError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one store operation.

    Parameters
    ----------
    attempts
        Tries in all (1 = never retry).
    base_delay_s
        Upper bound of the first random delay; doubled after each failure.
    max_delay_s
        Cap on any single delay.
    deadline_s
        No new attempt starts once this much time has passed since the first one.
    seed
        Seeds the jitter (tests); ``None`` draws from the system.
    """

    attempts: int = DEFAULT_RETRIES
    base_delay_s: float = DEFAULT_RETRY_BASE_DELAY_S
    max_delay_s: float = DEFAULT_RETRY_MAX_DELAY_S
    deadline_s: float = DEFAULT_RETRY_DEADLINE_S
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1 or min(self.base_delay_s, self.max_delay_s, self.deadline_s) < 0:
            raise ValueError("retry attempts must be >= 1 and delays >= 0")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt: for local disks and memory, whose errors do not go away."""
        return cls(attempts=1)

    def delay(self, failures: int, rng: random.Random) -> float:
        """The sleep after ``failures`` failed attempts: full jitter (AWS's advice), so
        that writers that failed together do not retry together."""
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2 ** (failures - 1)))

    def _next_delay(
        self,
        err: BaseException,
        failures: int,
        started: float,
        rng: random.Random,
        transfer: bool,
        only: type[BaseException] | None = None,
    ) -> float | None:
        if failures >= self.attempts or not is_transient(err, transfer=transfer):
            return None
        if only is not None and not isinstance(err, only):
            return None
        # a damaged file is retried once: a corrupt object stays corrupt
        if isinstance(err, IntegrityError) and failures >= 2:
            return None
        pause = self.delay(failures, rng)
        if time.monotonic() - started + pause > self.deadline_s:
            return None
        return pause

    def call(
        self,
        func: Callable[[], T],
        *,
        what: str,
        transfer: bool = False,
        only: type[BaseException] | None = None,
    ) -> T:
        """``func()``, retried while it fails transiently and the bounds allow (and, with
        ``only``, with an error of that type: the layer below already retried the rest).

        Raises
        ------
        Exception
            The last error of ``func``, unchanged.
        """
        rng = random.Random(self.seed)
        started = time.monotonic()
        failures = 0
        while True:
            try:
                return func()
            except Exception as err:
                failures += 1
                pause = self._next_delay(err, failures, started, rng, transfer, only)
                if pause is None:
                    raise
                _log_retry(what, err, failures, self.attempts, pause)
                time.sleep(pause)

    async def acall(self, func: Callable[[], Awaitable[T]], *, what: str, transfer: bool = False) -> T:
        """The coroutine version of ``call`` (for transfers run on fsspec's loop)."""
        rng = random.Random(self.seed)
        started = time.monotonic()
        failures = 0
        while True:
            try:
                return await func()
            except Exception as err:
                failures += 1
                pause = self._next_delay(err, failures, started, rng, transfer)
                if pause is None:
                    raise
                _log_retry(what, err, failures, self.attempts, pause)
                await asyncio.sleep(pause)


def _log_retry(what: str, err: BaseException, failures: int, attempts: int, pause: float) -> None:
    # the type only: a backend's message may quote a signed URL or a key (G7)
    logger.debug(
        "Retrying %s after %s (attempt %d of %d failed) in %.2f s",
        what,
        type(err).__name__,
        failures,
        attempts,
        pause,
    )
