"""Google Cloud Storage (gcsfs): ``gs://bucket/prefix``."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, BinaryIO

from modelkit_assets.backends.base import CloudBackend

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fsspec import AbstractFileSystem

    from modelkit_assets.transfer import Tuning

#: the gcsfs methods that gcsfs wraps in ``retry_request(retries=6)`` when its class is defined
_RETRIED = ("_request", "_get_file_request", "_get_file_concurrent")
_ATTEMPTS = 2
#: gcsfs's upload chunks must be a multiple of this
_CHUNK_UNIT = 2**18


class GCSBackend(CloudBackend):
    protocols = ("gs", "gcs")
    extra = "gcs"
    missing_bucket_markers = ("bucket does not exist",)

    def filesystem_class(self, protocol: str) -> type:
        """gcsfs's plain ``GCSFileSystem``, unless ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT``
        asks for its experimental class: that one makes a gRPC bucket-type lookup on the
        first request, which stalls on emulators and adds a round trip everywhere.
        (gcsfs registers the experimental class by default, deciding at import time.)"""
        from modelkit_assets.settings import gcsfs_experimental_requested

        if gcsfs_experimental_requested():
            return super().filesystem_class(protocol)
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem  # type: ignore[no-any-return]

    def open(self, cls: type, url: str, options: dict[str, Any]) -> tuple[AbstractFileSystem, str]:
        """The class chosen by ``filesystem_class``, not the one gcsfs registered."""
        import fsspec.core

        return cls(**options), fsspec.core.strip_protocol(url)

    def limit_retries(self, fs: AbstractFileSystem, options: Mapping[str, Any]) -> None:
        """Give this filesystem instance (only: other gcsfs users keep their defaults) its
        own copies of gcsfs's retried methods, decorated by gcsfs's own ``retry_request``
        with 2 attempts instead of 6 (which also logs a traceback per failed request).
        The undecorated method is the decorator's ``__wrapped__``."""
        try:
            from gcsfs.retry import retry_request
        except ImportError:  # a gcsfs without its retry module: nothing to turn down
            return
        for name in _RETRIED:
            original = getattr(getattr(type(fs), name, None), "__wrapped__", None)
            if original is not None:
                setattr(fs, name, types.MethodType(retry_request(retries=_ATTEMPTS)(original), fs))

    def bucket_exists(self, fs: AbstractFileSystem, bucket: str) -> bool | None:
        fs.call("GET", "b/{}", bucket, json_out=True)
        return True

    def open_write(self, fs: AbstractFileSystem, path: str, tuning: Tuning) -> BinaryIO:
        """gcsfs uploads resumable chunks of a multiple of 256 KiB."""
        block = max(_CHUNK_UNIT, tuning.part_size // _CHUNK_UNIT * _CHUNK_UNIT)
        handle: BinaryIO = fs.open(path, "wb", block_size=block)
        return handle
