"""Which :class:`Backend` drives a protocol or an open filesystem."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkit_assets.backends.azure import AzureBackend
from modelkit_assets.backends.base import Backend
from modelkit_assets.backends.gcs import GCSBackend
from modelkit_assets.backends.local import LocalBackend
from modelkit_assets.backends.memory import MemoryBackend
from modelkit_assets.backends.s3 import S3Backend

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: one instance per backend module; any other fsspec protocol gets ``GENERIC``
BACKENDS: tuple[Backend, ...] = (LocalBackend(), MemoryBackend(), S3Backend(), GCSBackend(), AzureBackend())
GENERIC = Backend()
_BY_PROTOCOL = {protocol: backend for backend in BACKENDS for protocol in backend.protocols}


def backend_for(target: str | AbstractFileSystem) -> Backend:
    """The backend of a protocol name (``"s3"``) or of an open fsspec filesystem."""
    if isinstance(target, str):
        return _BY_PROTOCOL.get(target.lower(), GENERIC)
    protocols = (target.protocol,) if isinstance(target.protocol, str) else tuple(target.protocol)
    for protocol in protocols:
        if protocol in _BY_PROTOCOL:
            return _BY_PROTOCOL[protocol]
    return GENERIC


def extra_for(protocol: str) -> str | None:
    """The ``modelkit-assets[extra]`` that installs ``protocol``'s backend."""
    return backend_for(protocol).extra
