"""Store URLs: their protocol, and the form that is safe to print."""

from __future__ import annotations

import re

USERINFO_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")


def redact_url(url: str) -> str:
    """The URL without user, password or query string: safe to print (G7)."""
    url = USERINFO_RE.sub(r"\1", url)
    return url.split("?", 1)[0].split("#", 1)[0]


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]
