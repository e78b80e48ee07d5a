"""Downloading a known open-data file (``bingeo fetch``): verified, then moved into place."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from bingeo.errors import ChecksumMismatch, DownloadFailed, InvalidInput
from bingeo.fetch import DOWNLOADS, Download, find_download, parse_sha256

# (bytes received, bytes expected or None when the server does not say)
Progress = Callable[[int, int | None], None]
CHUNK_BYTES = 1024 * 1024
# No official file comes near this; a server sending more is not sending what was asked for.
MAX_BYTES = 8 * 1024**3


@dataclass(frozen=True)
class FetchResult:
    """Where the file is, its SHA-256 and size, and whether the checksum was checked."""

    name: str
    path: Path
    url: str
    sha256: str
    size_bytes: int
    verified: bool
    downloaded: bool

    def as_dict(self) -> dict[str, object]:
        """The result as plain data (for ``--json``)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "url": self.url,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "verified": self.verified,
            "downloaded": self.downloaded,
        }


def fetch(
    name: str,
    dest: Path,
    *,
    registry: Mapping[str, Download] = DOWNLOADS,
    url: str | None = None,
    sha256: str | None = None,
    accept_checksum: bool = False,
    timeout_s: float = 60.0,
    max_bytes: int = MAX_BYTES,
    progress: Progress | None = None,
) -> FetchResult:
    """Download ``name`` of the registry into ``dest`` and keep it only if its checksum holds.

    The expected SHA-256 is ``sha256`` if given, else the registry's. Without either, nothing is
    downloaded unless ``accept_checksum`` is set: then the file is kept and its SHA-256 returned,
    marked unverified. The file is written to a temporary file in ``dest`` and moved into place
    in one step, so ``dest`` never holds a partial or unverified file under the final name; on
    any failure the temporary file is removed.
    """
    download = find_download(name, registry)
    if url is not None:
        download = download.with_url(url)
    expected = parse_sha256(sha256) if sha256 else download.sha256
    if expected is None and not accept_checksum:
        raise InvalidInput(
            f"no checksum is known for {name} ({download.checksum_note or 'none registered'}): "
            "give --sha256 with one from a source you trust, or --accept-checksum to download "
            "it unverified and print its SHA-256"
        )
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / download.filename
    if expected is not None and target.is_file() and _sha256_of(target) == expected:
        return FetchResult(
            name, target, download.url, expected, target.stat().st_size, True, downloaded=False
        )
    # Created like any new file (the umask applies), under a name no one else uses.
    temporary = dest / f".{download.filename}.{secrets.token_hex(8)}.part"
    try:
        with temporary.open("xb") as out:
            digest, size = _download(
                download.url, out, timeout_s, max_bytes, download.size_bytes, progress
            )
            out.flush()
            os.fsync(out.fileno())
        if download.size_bytes is not None and size != download.size_bytes:
            raise ChecksumMismatch(
                f"{download.url}: {size:,} bytes received, {download.size_bytes:,} expected; "
                "the file was not kept"
            )
        if expected is not None and digest != expected:
            raise ChecksumMismatch(
                f"{download.url}: SHA-256 {digest} is not the expected {expected}; "
                "the file was not kept"
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return FetchResult(
        name, target, download.url, digest, size, verified=expected is not None, downloaded=True
    )


def _download(
    url: str,
    out,
    timeout_s: float,
    max_bytes: int,
    size_bytes: int | None,
    progress: Progress | None,
) -> tuple[str, int]:
    """Stream ``url`` into ``out``; returns its SHA-256 and size. Raises ``DownloadFailed``."""
    limit = min(max_bytes, size_bytes) if size_bytes is not None else max_bytes
    hasher = hashlib.sha256()
    size = 0
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise DownloadFailed(
                    f"{url}: HTTP {response.status_code} {response.reason_phrase}".rstrip()
                )
            total = _content_length(response)
            if total is not None and size_bytes is not None and total != size_bytes:
                raise ChecksumMismatch(
                    f"{url}: the server announces {total:,} bytes, {size_bytes:,} expected; "
                    "nothing was kept"
                )
            if total is not None and total > limit:
                raise DownloadFailed(f"{url}: {total:,} bytes announced, more than {limit:,}")
            for chunk in response.iter_bytes(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise (ChecksumMismatch if size_bytes is not None else DownloadFailed)(
                        f"{url}: more than {limit:,} bytes sent; nothing was kept"
                    )
                hasher.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(size, total)
    except httpx.TimeoutException as exc:
        raise DownloadFailed(f"{url}: no answer within {timeout_s:g} s ({exc})") from exc
    except httpx.HTTPError as exc:
        raise DownloadFailed(f"{url}: {exc or type(exc).__name__}") from exc
    return hasher.hexdigest(), size


def _content_length(response: httpx.Response) -> int | None:
    # A compressed transfer announces the compressed length: no total to show then.
    if response.headers.get("content-encoding"):
        return None
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            hasher.update(block)
    return hasher.hexdigest()


__all__ = ["FetchResult", "fetch"]
