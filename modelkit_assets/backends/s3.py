"""S3 and S3-compatible servers (s3fs): ``s3://bucket/prefix``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from modelkit_assets.backends.base import CloudBackend
from modelkit_assets.errors import ConfigurationError, first_error
from modelkit_assets.integrity import BLOCK_SIZE

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from fsspec.callbacks import Callback

    from modelkit_assets.integrity import StreamHasher
    from modelkit_assets.manifest import FileEntry
    from modelkit_assets.transfer import Tuning


class S3Backend(CloudBackend):
    protocols = ("s3", "s3a")
    extra = "s3"
    # s3fs hands its **kwargs to aiobotocore's session, which checks them at the first request
    forwards_options_to = "aiobotocore.session:AioSession"
    missing_bucket_markers = ("NoSuchBucket",)

    def credentials_from_url(
        self, url: str, clean_url: str, userinfo: str, options: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """``key:secret@`` become the ``key``/``secret`` options (unless given)."""
        from urllib.parse import unquote

        key, _, secret = userinfo.partition(":")
        options = dict(options)
        options.setdefault("key", unquote(key))
        if secret:
            options.setdefault("secret", unquote(secret))
        return clean_url, options

    def prepare_options(
        self, options: dict[str, Any], *, pool_size: int | None, origin: str
    ) -> dict[str, Any]:
        """No listings cache; botocore's pool sized to the transfer concurrency (it
        defaults to 10, which would queue the other requests); one botocore retry, since
        retry.py retries each request with a bounded total (botocore's own 5 attempts
        with legacy backoff would multiply with ours); no payload hash for the signature
        (the checksum header is signed instead). A ``config_kwargs`` given wins."""
        options.setdefault("use_listings_cache", False)
        config = options.get("config_kwargs") or {}
        if not isinstance(config, Mapping):
            raise ConfigurationError(
                f"The storage option 'config_kwargs' in {origin} must be a JSON object (botocore's "
                "Config arguments)."
            )
        config = dict(config)
        # uploads carry a signed sha256 checksum header that the server checks (aput), so a
        # second sha256 of every body for the signature is wasted work: botocore only skips
        # it by itself over https; this keeps plain-http endpoints (MinIO, moto) as cheap
        s3_config = config.get("s3")
        if s3_config is None or isinstance(s3_config, Mapping):
            config["s3"] = {"payload_signing_enabled": False, **(s3_config or {})}
        if pool_size is not None:
            config.setdefault("max_pool_connections", max(10, pool_size))
        config.setdefault("retries", {"total_max_attempts": 2, "mode": "standard"})
        options["config_kwargs"] = config
        return options

    def limit_retries(self, fs: AbstractFileSystem, options: Mapping[str, Any]) -> None:
        if "retries" not in options:
            fs.retries = 2

    def object_exists(self, fs: AbstractFileSystem, key: str) -> bool:
        """One HEAD: s3fs's ``exists`` follows a missing key with a listing of it as a
        folder (a second request, on the common path of a commit check)."""
        bucket, path, _ = fs.split_path(key)
        try:
            fs.call_s3("head_object", Bucket=bucket, Key=path)
        except FileNotFoundError:
            return False
        return True

    def bucket_exists(self, fs: AbstractFileSystem, bucket: str) -> bool | None:
        # s3fs's own exists answers False when refused: ask the bucket itself
        fs.call_s3("list_objects_v2", Bucket=bucket, MaxKeys=1)
        return True

    # -- transfers: one pass, hashed as sent or received, a sliding window of parts ------
    streams_async = True

    async def aput(
        self,
        fs: AbstractFileSystem,
        local: str,
        key: str,
        tuning: Tuning,
        callback: Callback,
        hasher: StreamHasher,
        *,
        resume: bool = False,
    ) -> None:
        """One PUT for a file of at most ``part_size`` bytes, otherwise a multipart upload
        with ``part_concurrency`` parts in flight: a new part is read as soon as one is
        sent (s3fs sends batches and waits for the slowest part of each). Parts are read
        and hashed in a worker thread, in order, so the event loop keeps sending.

        With ``resume`` (a dead writer's version taken over), the multipart upload it left
        open for this key is continued: its parts whose recorded checksum (or MD5 ETag)
        matches the local part are not sent again."""
        bucket, path, _ = fs.split_path(key)
        loop = asyncio.get_running_loop()
        with open(local, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            callback.set_size(size)
            part_size = multipart_part_size(size, tuning.part_size)

            # S3 records a sha256 checksum per part when it is sent one: with parts of one
            # block, those are the manifest's block hashes, and the object's checksum (kept
            # by S3, read back by HeadObject) proves a stored object intact (resume)
            checksums = part_size == BLOCK_SIZE

            def read_part() -> tuple[bytes, str]:
                data = source.read(part_size)
                hasher.update(data)
                digest = hasher.last_block() if checksums else b""
                return data, base64.b64encode(digest).decode()

            if size <= part_size:

                def read_whole() -> tuple[bytes, str]:
                    data = source.read(part_size)
                    hasher.update(data)
                    return data, base64.b64encode(hasher.sha256_so_far()).decode()

                data, checksum = await loop.run_in_executor(None, read_whole)
                await fs._call_s3(
                    "put_object",
                    Bucket=bucket,
                    Key=path,
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
                callback.relative_update(len(data))
                return
            upload_id, stored = await _open_upload(fs, bucket, path) if resume and checksums else (None, {})
            if upload_id is None:
                created = await fs._call_s3(
                    "create_multipart_upload",
                    Bucket=bucket,
                    Key=path,
                    **({"ChecksumAlgorithm": "SHA256"} if checksums else {}),
                )
                upload_id = created["UploadId"]
            try:
                sent = await _send_parts(
                    fs, bucket, path, upload_id, read_part, part_size, tuning, callback, checksums, stored
                )
                parts = [sent[n] for n in sorted(sent)]
                await fs._call_s3(
                    "complete_multipart_upload",
                    Bucket=bucket,
                    Key=path,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            except BaseException:
                # parts of an abandoned upload are billed until aborted
                with contextlib.suppress(Exception):
                    await fs._call_s3("abort_multipart_upload", Bucket=bucket, Key=path, UploadId=upload_id)
                raise

    # -- resume: what S3 recorded when it stored an object -----------------------------
    records_checksums = True

    def stored_checksum(self, fs: AbstractFileSystem, key: str) -> str | None:
        """The sha256 checksum S3 recorded for ``key`` when it was written (of the whole
        object, or of its parts' checksums for a multipart upload), ``None`` if none."""
        bucket, path, _ = fs.split_path(key)
        head = fs.call_s3("head_object", Bucket=bucket, Key=path, ChecksumMode="ENABLED")
        checksum = head.get("ChecksumSHA256")
        return checksum.split("-", 1)[0] if isinstance(checksum, str) else None

    def checksums_of(self, entry: FileEntry) -> set[str]:
        """The checksums S3 records for a file with this entry, uploaded by ``aput``."""
        found = set()
        if entry.sha256 is not None:
            found.add(base64.b64encode(bytes.fromhex(entry.sha256)).decode())
        if entry.blocks:
            joined = b"".join(bytes.fromhex(block) for block in entry.blocks)
            found.add(base64.b64encode(hashlib.sha256(joined).digest()).decode())
        return found

    async def aget(
        self,
        fs: AbstractFileSystem,
        key: str,
        local: str,
        tuning: Tuning,
        callback: Callback,
        hasher: StreamHasher,
        *,
        start: int = 0,
    ) -> None:
        """One streamed GET (or, with ``download_part_concurrency`` > 1, a sliding window
        of ranged GETs) from byte ``start``; chunks are hashed and written in a worker
        thread, in order, while the next ones arrive."""
        bucket, path, _ = fs.split_path(key)
        ranged = tuning.download_part_concurrency > 1
        end = f"{start + tuning.part_size - 1}" if ranged else ""
        first = await fs._call_s3(
            "get_object",
            Bucket=bucket,
            Key=path,
            **({"Range": f"bytes={start}-{end}"} if ranged or start else {}),
        )
        total = _total_size(first)
        callback.set_size(total)  # stops an object larger than its manifest at once
        callback.relative_update(start)
        with open(local, "r+b" if start else "wb") as target:
            target.seek(start)
            async with _OrderedWriter(target, hasher) as writer:
                await _drain(first["Body"], writer, callback)
                if ranged and total is not None and total > start + tuning.part_size:
                    await _ranged_rest(
                        fs, bucket, path, start + tuning.part_size, total, tuning, writer, callback
                    )

    def job_cost(self, direction: str, size: int | None, tuning: Tuning) -> int:
        """An upload's body is held twice while it is sent: once read, and once more in
        the socket transport's buffer for what the kernel has not taken yet."""
        if direction == "put":
            if size is not None and size <= tuning.part_size:
                return 2 * size
            part = multipart_part_size(size or 0, tuning.part_size)
            return 2 * part * parts_in_flight(part, tuning)
        if tuning.download_part_concurrency > 1 and (size is None or size > tuning.part_size):
            return tuning.part_size * tuning.download_part_concurrency
        return _WRITE_BATCH * 2 if size is None else min(size, _WRITE_BATCH * 2)


#: S3 accepts at most this many parts in one multipart upload
MAX_PARTS = 10_000
#: bytes of a streamed download handed at once to the thread that hashes and writes
_WRITE_BATCH = 2**20
#: bytes asked of the response body per read
_READ_CHUNK = 2**20


def multipart_part_size(size: int, part_size: int) -> int:
    """``part_size``, grown (in MiB) so that ``size`` fits in ``MAX_PARTS`` parts."""
    needed = -(-size // MAX_PARTS)
    if needed <= part_size:
        return part_size
    mib = 2**20
    return -(-needed // mib) * mib


def parts_in_flight(part_size: int, tuning: Tuning) -> int:
    """``part_concurrency``, lowered so that the parts held (twice each: read, and while
    being sent) fit in the memory budget: one file never holds more than the budget."""
    return max(1, min(tuning.part_concurrency, tuning.memory_budget // (2 * part_size)))


async def _send_parts(
    fs: AbstractFileSystem,
    bucket: str,
    path: str,
    upload_id: str,
    read_part: Callable[[], tuple[bytes, str]],
    part_size: int,
    tuning: Tuning,
    callback: Callback,
    checksums: bool,
    stored: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[int, dict[str, Any]]:
    """Upload parts from ``read_part`` until it returns nothing, keeping up to
    ``part_concurrency`` parts in flight (read or being sent); each part's entry of
    ``CompleteMultipartUpload`` by number. A part already ``stored`` in this upload (a
    resumed one) with the same checksum is not sent again."""
    loop = asyncio.get_running_loop()
    window = asyncio.Semaphore(parts_in_flight(part_size, tuning))
    sent: dict[int, dict[str, Any]] = {}

    async def send(number: int, data: bytes, checksum: str) -> None:
        try:
            extra = {"ChecksumSHA256": checksum} if checksums else {}
            answer = await fs._call_s3(
                "upload_part",
                Bucket=bucket,
                Key=path,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                **extra,
            )
            sent[number] = {"PartNumber": number, "ETag": answer["ETag"], **extra}
            callback.relative_update(len(data))
        finally:
            window.release()

    with first_error():
        async with asyncio.TaskGroup() as group:
            number = 0
            while True:
                await window.acquire()
                data, checksum = await loop.run_in_executor(None, read_part)
                if not data:
                    window.release()
                    break
                number += 1
                previous = (stored or {}).get(number)
                if previous is not None and _same_part(previous, data, checksum):
                    sent[number] = {
                        "PartNumber": number,
                        "ETag": previous["ETag"],
                        "ChecksumSHA256": checksum,
                    }
                    callback.relative_update(len(data))
                    window.release()
                    continue
                group.create_task(send(number, data, checksum))
    return sent


def _same_part(previous: Mapping[str, Any], data: bytes, checksum: str) -> bool:
    """Whether a part S3 stored holds ``data``: by the sha256 it recorded, or by its ETag
    (the MD5 of the part, for uploads without KMS encryption)."""
    if previous.get("Size") != len(data):
        return False
    recorded = previous.get("ChecksumSHA256")
    if isinstance(recorded, str):
        return recorded == checksum
    etag = str(previous.get("ETag", "")).strip('"')
    return etag == hashlib.md5(data, usedforsecurity=False).hexdigest()


async def _open_upload(
    fs: AbstractFileSystem, bucket: str, path: str
) -> tuple[str | None, dict[int, Mapping[str, Any]]]:
    """The multipart upload a dead writer left open for ``path`` and its stored parts by
    number (``None`` if there is none); other open uploads of the key are aborted."""
    listed = await fs._call_s3("list_multipart_uploads", Bucket=bucket, Prefix=path)
    uploads = [u for u in listed.get("Uploads", []) if u.get("Key") == path]
    if not uploads:
        return None, {}
    keep, *others = sorted(uploads, key=lambda u: str(u.get("Initiated", "")), reverse=True)
    for other in others:
        with contextlib.suppress(Exception):
            await fs._call_s3("abort_multipart_upload", Bucket=bucket, Key=path, UploadId=other["UploadId"])
    parts: dict[int, Mapping[str, Any]] = {}
    marker = 0
    while True:
        page = await fs._call_s3(
            "list_parts", Bucket=bucket, Key=path, UploadId=keep["UploadId"], PartNumberMarker=marker
        )
        for part in page.get("Parts", []):
            parts[int(part["PartNumber"])] = part
        if not page.get("IsTruncated"):
            return str(keep["UploadId"]), parts
        marker = int(page["NextPartNumberMarker"])


def _total_size(response: Mapping[str, Any]) -> int | None:
    """The object's size from a GET answer (``Content-Range`` for a ranged one)."""
    content_range = response.get("ContentRange")
    if isinstance(content_range, str) and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.get("ContentLength")
    return length if isinstance(length, int) else None


class _OrderedWriter:
    """Hashes and writes batches in a worker thread, one at a time and in order, so the
    event loop keeps receiving while the previous batch is hashed and written."""

    def __init__(self, target: BinaryIO, hasher: StreamHasher) -> None:
        self.target, self.hasher = target, hasher
        self.pending: asyncio.Future[None] | None = None

    def _consume(self, chunks: list[bytes]) -> None:
        for data in chunks:
            self.hasher.update(data)
            self.target.write(data)

    async def write(self, chunks: list[bytes]) -> None:
        """Hand a batch of chunks over (the chunks as received: never joined, no copy)."""
        if self.pending is not None:
            await self.pending
        self.pending = asyncio.get_running_loop().run_in_executor(None, self._consume, chunks)

    async def __aenter__(self) -> _OrderedWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # the file is closed after this: never while a batch is still being written
        if self.pending is not None:
            pending, self.pending = self.pending, None
            if exc[0] is None:
                await pending
            else:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pending)


async def _drain(body: Any, writer: _OrderedWriter, callback: Callback) -> None:
    """Read a response body to its end into ``writer`` in batches of ``_WRITE_BATCH``."""
    batch: list[bytes] = []
    held = 0
    try:
        while chunk := await body.read(_READ_CHUNK):
            callback.relative_update(len(chunk))
            batch.append(chunk)
            held += len(chunk)
            if held >= _WRITE_BATCH:
                await writer.write(batch)
                batch, held = [], 0
        if batch:
            await writer.write(batch)
    finally:
        body.close()


async def _ranged_rest(
    fs: AbstractFileSystem,
    bucket: str,
    path: str,
    first: int,
    total: int,
    tuning: Tuning,
    writer: _OrderedWriter,
    callback: Callback,
) -> None:
    """The ranges from byte ``first`` on, ``download_part_concurrency`` in flight, written
    in order as they complete (a slow range holds back only the writing, not the others)."""
    part = tuning.part_size
    window = asyncio.Semaphore(tuning.download_part_concurrency)
    queue: asyncio.Queue[asyncio.Task[bytes] | None] = asyncio.Queue()

    async def fetch(start: int) -> bytes:
        end = min(start + part, total) - 1
        got = await fs._call_s3("get_object", Bucket=bucket, Key=path, Range=f"bytes={start}-{end}")
        body = got["Body"]
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        callback.relative_update(len(data))
        return data

    with first_error():
        async with asyncio.TaskGroup() as group:
            await _produce_and_consume(group, first, part, total, window, queue, fetch, writer)


async def _produce_and_consume(
    group: asyncio.TaskGroup,
    first: int,
    part: int,
    total: int,
    window: asyncio.Semaphore,
    queue: asyncio.Queue[asyncio.Task[bytes] | None],
    fetch: Callable[[int], Coroutine[Any, Any, bytes]],
    writer: _OrderedWriter,
) -> None:
    """Start ranges while the window has room; write them in order as they complete."""

    async def produce() -> None:
        for start in range(first, total, part):
            await window.acquire()  # released once that range is written
            await queue.put(group.create_task(fetch(start)))
        await queue.put(None)

    async def consume() -> None:
        while (task := await queue.get()) is not None:
            await writer.write([await task])
            window.release()

    group.create_task(produce())
    group.create_task(consume())
