"""``bingeo fetch``: downloads from a real HTTP server on 127.0.0.1, verified or refused."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bingeo import cli
from bingeo.errors import ChecksumMismatch, DownloadFailed, InvalidInput, NotFound
from bingeo.fetch import DOWNLOADS, SHA256_PATTERN, Download, find_download
from bingeo.services.fetch import fetch

CONTENT = bytes(range(256)) * 12_000  # 3 MB: several chunks, so progress is reported often
GOOD = hashlib.sha256(CONTENT).hexdigest()
BAD = hashlib.sha256(b"something else").hexdigest()
FILE = "openaddress-bevlg.zip"


class Handler(SimpleHTTPRequestHandler):
    """Serves the folder; ``/slow`` answers late, ``/short`` announces more than it sends."""

    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", str(len(CONTENT)))
            self.end_headers()
            self.wfile.write(CONTENT[:1000])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        """Quiet: the tests read what matters from the answers."""


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: clients that stop reading (a refused download) are part of the tests."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 (a thread) serving CONTENT as ``/openaddress-bevlg.zip``."""
    root = tmp_path_factory.mktemp("served")
    (root / FILE).write_bytes(CONTENT)
    seen: list[str] = []
    handler = type("TestHandler", (Handler,), {"requests": seen})
    httpd = Server(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def _registry(url: str, sha256: str | None, size: int | None = None) -> dict[str, Download]:
    entry = Download(
        name="test-file",
        url=url,
        description="a test file",
        licence="test",
        sha256=sha256,
        size_bytes=size,
        checksum_note="" if sha256 else "none for the test",
    )
    return {entry.name: entry}


def test_verified_download_is_moved_into_place_with_progress(server, tmp_path: Path) -> None:
    base, _ = server
    steps: list[tuple[int, int | None]] = []
    result = fetch(
        "test-file",
        tmp_path / "data",
        registry=_registry(f"{base}/{FILE}", GOOD, len(CONTENT)),
        progress=lambda done, total: steps.append((done, total)),
    )
    assert result.path == tmp_path / "data" / FILE
    assert result.path.read_bytes() == CONTENT
    assert (result.sha256, result.size_bytes) == (GOOD, len(CONTENT))
    assert result.verified and result.downloaded
    assert [p.name for p in (tmp_path / "data").iterdir()] == [FILE]  # no temporary file left
    assert len(steps) >= 3
    assert steps[-1] == (len(CONTENT), len(CONTENT))
    assert [done for done, _ in steps] == sorted(done for done, _ in steps)

    again = fetch("test-file", tmp_path / "data", registry=_registry(f"{base}/{FILE}", GOOD))
    assert (again.verified, again.downloaded) == (True, False)


def test_wrong_checksum_keeps_nothing(server, tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(ChecksumMismatch, match=f"SHA-256 {GOOD} is not the expected {BAD}"):
        fetch("test-file", tmp_path, registry=_registry(f"{base}/{FILE}", BAD))
    assert list(tmp_path.iterdir()) == []


def test_wrong_checksum_leaves_an_earlier_file_alone(server, tmp_path: Path) -> None:
    base, _ = server
    (tmp_path / FILE).write_bytes(b"the file that was there")
    with pytest.raises(ChecksumMismatch):
        fetch("test-file", tmp_path, registry=_registry(f"{base}/{FILE}", BAD))
    assert [p.name for p in tmp_path.iterdir()] == [FILE]
    assert (tmp_path / FILE).read_bytes() == b"the file that was there"


def test_wrong_size_keeps_nothing(server, tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(ChecksumMismatch, match="1,234 expected"):
        fetch("test-file", tmp_path, registry=_registry(f"{base}/{FILE}", GOOD, 1234))
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_named_and_nothing_is_kept(server, tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(DownloadFailed, match="HTTP 404"):
        fetch("test-file", tmp_path, registry=_registry(f"{base}/missing.zip", GOOD))
    assert list(tmp_path.iterdir()) == []


def test_broken_transfer_and_silent_server_fail_cleanly(server, tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(DownloadFailed) as broken:
        fetch("test-file", tmp_path, registry=_registry(f"{base}/short", GOOD))
    assert broken.value.code == "download_failed"
    with pytest.raises(DownloadFailed, match="no answer within 0.5 s"):
        fetch("test-file", tmp_path, registry=_registry(f"{base}/slow", GOOD), timeout_s=0.5)
    assert list(tmp_path.iterdir()) == []


def test_more_than_the_limit_is_refused(server, tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(DownloadFailed, match="more than 1,000"):
        fetch("test-file", tmp_path, registry=_registry(f"{base}/{FILE}", GOOD), max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


def test_unknown_checksum_needs_a_decision_before_any_download(server, tmp_path: Path) -> None:
    base, seen = server
    registry = _registry(f"{base}/{FILE}", None)
    before = len(seen)
    with pytest.raises(InvalidInput, match="no checksum is known for test-file"):
        fetch("test-file", tmp_path, registry=registry)
    assert len(seen) == before  # refused before asking the server anything
    assert list(tmp_path.iterdir()) == []

    given = fetch("test-file", tmp_path / "given", registry=registry, sha256=GOOD.upper())
    assert given.verified
    with pytest.raises(ChecksumMismatch):
        fetch("test-file", tmp_path / "wrong", registry=registry, sha256=BAD)
    accepted = fetch("test-file", tmp_path / "accepted", registry=registry, accept_checksum=True)
    assert (accepted.verified, accepted.sha256) == (False, GOOD)
    assert accepted.path.read_bytes() == CONTENT


def test_cli_downloads_from_a_mirror_with_progress_and_checksum(server, tmp_path: Path) -> None:
    base, _ = server
    runner = CliRunner()
    args = ["fetch", "best-addresses-flanders", "--dest", str(tmp_path), "--url", f"{base}/{FILE}"]
    refused = runner.invoke(cli.app, args)
    assert refused.exit_code != 0
    assert isinstance(refused.exception, InvalidInput)
    assert list(tmp_path.iterdir()) == []

    done = runner.invoke(cli.app, [*args, "--sha256", GOOD])
    assert done.exit_code == 0, done.output
    assert "(100%)" in done.stderr and "bytes" in done.stderr
    assert f"sha256 {GOOD}" in done.stdout and "verified" in done.stdout
    assert (tmp_path / FILE).read_bytes() == CONTENT

    wrong = runner.invoke(cli.app, [*args, "--sha256", BAD, "--dest", str(tmp_path / "other")])
    assert isinstance(wrong.exception, ChecksumMismatch)
    assert list((tmp_path / "other").iterdir()) == []


def test_cli_lists_the_registry() -> None:
    result = CliRunner().invoke(cli.app, ["fetch"])
    assert result.exit_code == 0
    for download in DOWNLOADS.values():
        assert download.name in result.stdout and download.url in result.stdout


def test_registry_entries_are_complete_and_honest() -> None:
    assert {"statbel-sectors-2025", "best-addresses-flanders"} <= set(DOWNLOADS)
    for name, download in DOWNLOADS.items():
        assert download.name == name
        assert download.url.startswith("https://")
        assert download.filename.endswith(".zip")
        assert download.licence and download.description
        # A checksum is a real one or its absence is explained, never a placeholder.
        if download.sha256 is None:
            assert download.checksum_note
        else:
            assert SHA256_PATTERN.fullmatch(download.sha256)


@pytest.mark.parametrize(
    ("name", "url", "error"),
    [
        ("nope", None, NotFound),
        ("best-addresses-flanders", "file:///etc/passwd", InvalidInput),
        ("best-addresses-flanders", "http://127.0.0.1/", InvalidInput),
        ("best-addresses-flanders", "http://127.0.0.1/..", InvalidInput),
    ],
)
def test_bad_names_and_addresses_are_refused(name, url, error, tmp_path: Path) -> None:
    with pytest.raises(error):
        fetch(name, tmp_path, url=url, accept_checksum=True)
    assert list(tmp_path.iterdir()) == []
    if error is NotFound:
        with pytest.raises(NotFound, match="best-addresses-flanders"):
            find_download(name)
