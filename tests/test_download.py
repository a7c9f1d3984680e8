"""Downloads: retries, checksum, nothing partial left behind; file:// and a local HTTP server."""

import hashlib
import http.server
import threading

import pytest

from rnnrepro.config.studies import schema_default
from rnnrepro.data import download as D
from rnnrepro.data.download import DownloadError

DATA = b"Once upon a time\n" * 1000


def download(urls, sha256, out, **settings):
    """The download with the config schema's corpus settings, `settings` over them."""
    keys = ("retries", "timeout", "backoff", "max_mb")
    return D.download(urls, sha256, out, **{**{k: schema_default("corpus", k) for k in keys}, **settings})
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    """A loopback HTTP server: /ok serves DATA, /cut drops the connection halfway, /500 fails."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path == "/500":
                self.send_error(500)
                return
            self.send_response(200)
            if self.path != "/nolength":  # /nolength: DATA, its size unannounced
                self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA if self.path in ("/ok", "/nolength") else DATA[: len(DATA) // 2])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_file_url_and_checksum(tmp_path):
    src = tmp_path / "src.txt"
    src.write_bytes(DATA)
    out = tmp_path / "data" / "book.txt"
    download([src.as_uri()], SHA, out)
    assert out.read_bytes() == DATA and leftovers(out.parent) == ["book.txt"]
    mtime = out.stat().st_mtime_ns
    download(["file:///nonexistent"], SHA, out)  # already there with the right hash: no fetch
    assert out.stat().st_mtime_ns == mtime


def test_checksum_mismatch_names_both_hashes_and_leaves_nothing(tmp_path):
    src = tmp_path / "src.txt"
    src.write_bytes(DATA + b"tampered")
    out = tmp_path / "data" / "book.txt"
    with pytest.raises(DownloadError) as err:
        download([src.as_uri()], SHA, out, backoff=0)
    msg = str(err.value)
    assert SHA in msg and hashlib.sha256(DATA + b"tampered").hexdigest() in msg
    assert src.as_uri() in msg and leftovers(out.parent) == []


def test_unreachable_urls_are_retried_then_named(tmp_path, server):
    base, hits = server
    out = tmp_path / "data" / "book.txt"
    with pytest.raises(DownloadError) as err:
        download([f"{base}/500", "http://127.0.0.1:9/refused"], SHA, out, retries=3, backoff=0.01,
                 timeout=5)
    assert hits.count("/500") == 3  # bounded retries
    assert f"{base}/500" in str(err.value) and "127.0.0.1:9/refused" in str(err.value)
    assert leftovers(out.parent) == []


def test_a_cut_transfer_leaves_nothing_and_the_next_url_is_tried(tmp_path, server):
    base, hits = server
    out = tmp_path / "data" / "book.txt"
    download([f"{base}/cut", f"{base}/ok"], SHA, out, retries=2, backoff=0.01, timeout=5)
    assert out.read_bytes() == DATA and leftovers(out.parent) == ["book.txt"]
    assert hits[-1] == "/ok" and "/cut" in hits


def test_a_file_larger_than_max_mb_is_refused_as_it_arrives(server, tmp_path):
    """Announced (/ok, a file:// source) or counted as it arrives (/nolength)."""
    base, _ = server
    src = tmp_path / "big.txt"
    src.write_bytes(DATA)
    limit = len(DATA) / 2 ** 20 / 2  # half the file
    for url in (f"{base}/ok", src.as_uri(), f"{base}/nolength"):
        with pytest.raises(DownloadError, match=r"more than corpus.max_mb"):
            download([url], SHA, tmp_path / "out.txt", max_mb=limit, backoff=0)
        assert not list(tmp_path.glob("out.txt*")) and not list(tmp_path.glob(".out.txt*"))
