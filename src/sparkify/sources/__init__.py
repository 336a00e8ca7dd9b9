"""Finding and reading raw files. A source lists its ``.json`` files once, with a cheap change
token (modification time or ETag) so the ledger can skip unchanged files without reading them.

``base`` holds what every source shares, ``local`` reads local folders and ``file://`` URLs,
``objectstore`` reads ``s3://`` and other fsspec URLs (imported only when such a URL is given:
it pulls in fsspec and botocore, which the ``s3`` extra installs).
"""

from __future__ import annotations

from urllib.parse import urlparse

from sparkify.config import Settings
from sparkify.errors import needs
from sparkify.sources.base import (
    MAX_URL_BYTES,
    IgnoredFile,
    Source,
    SourceFile,
    filter_by_date,
    fingerprint,
    fingerprint_of,
    start_fingerprint,
)
from sparkify.sources.local import LocalSource, is_local
from sparkify.text import printable

__all__ = [
    "MAX_URL_BYTES",
    "IgnoredFile",
    "LocalSource",
    "Source",
    "SourceFile",
    "filter_by_date",
    "fingerprint",
    "fingerprint_of",
    "is_local",
    "open_source",
    "printable",
    "start_fingerprint",
]


def open_source(location: str, settings: Settings | None = None) -> Source:
    """A source for a local path, ``file://`` URL or object-store URL (``s3://`` ...)."""
    if is_local(location):
        return LocalSource(location)
    with needs("s3", f"reading {urlparse(location).scheme}:// URLs"):
        from sparkify.sources.objectstore import ObjectStoreSource

    return ObjectStoreSource(location, settings)
