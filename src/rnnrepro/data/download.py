"""Fetch a file by URL (http, https or file), verify its sha256, and move it into place.

Nothing is written at the destination unless the whole file arrived and its checksum
matched: bytes go to a temporary file beside it, which is renamed only at the end.
"""

import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

log = logging.getLogger("rnnrepro")


MAX_WAIT = 60.0  # seconds: the longest wait between two attempts


class DownloadError(RuntimeError):
    pass


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class TooLarge(DownloadError):
    """A file larger than the download accepts (asking again will not make it smaller)."""


def _fetch(url, dest, timeout, max_mb):
    """`url`'s bytes into `dest`, refused (TooLarge) once more than `max_mb` MB are announced
    or have arrived: a wrong URL cannot fill the disk."""
    limit = int(max_mb * 2 ** 20)
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
        announced = response.headers.get("Content-Length") if response.headers else None
        if announced and announced.isdigit() and int(announced) > limit:
            raise TooLarge(f"{url}: {int(announced) / 2 ** 20:.1f} MB announced, more than "
                           f"corpus.max_mb ({max_mb:g} MB) accepts")
        got = 0
        while block := response.read(1 << 16):
            got += len(block)
            if got > limit:
                raise TooLarge(f"{url}: more than corpus.max_mb ({max_mb:g} MB) arrived; stopped "
                               "there")
            f.write(block)


def download(urls, sha256, out, retries, timeout, backoff, max_mb):
    """Try each URL in turn, `retries` attempts each, waiting backoff, 2·backoff, … between;
    a file larger than `max_mb` is refused as it arrives. The config schema's corpus keys
    hold the defaults (the CLI fills them in)."""
    out = Path(out)
    for url in urls:
        if url.startswith("file://") and not url.startswith("file:///"):
            raise DownloadError(f"{url}: a file:// URL needs an absolute path (file:///…), so "
                                "that the part after file:// is not read as a host name")
    if out.exists() and sha256_of(out) == sha256:
        log.info("%s is already there with the right checksum", out)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        for attempt in range(1, retries + 1):
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
            os.close(fd)
            try:
                log.info("downloading %s (attempt %d/%d)", url, attempt, retries)
                _fetch(url, tmp, timeout, max_mb)
                actual = sha256_of(tmp)
                if actual != sha256:
                    # a wrong file will not become right by asking again: next URL
                    errors.append(f"{url}: checksum mismatch: expected sha256 {sha256}, got {actual}")
                    break
                os.chmod(tmp, 0o644)
                os.replace(tmp, out)
                log.info("saved %s (sha256 %s)", out, actual)
                return out
            except TooLarge as err:  # a file too large stays too large: next URL
                errors.append(str(err))
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
                errors.append(f"{url} (attempt {attempt}): {err}")
                if url.startswith("file:") and not Path(urllib.request.url2pathname(
                        urllib.parse.urlparse(url).path)).exists():
                    break  # a missing local file will not appear by asking again
                if attempt < retries:
                    time.sleep(min(backoff * 2 ** (attempt - 1), MAX_WAIT))
            finally:
                Path(tmp).unlink(missing_ok=True)
    raise DownloadError(f"could not download {out.name}; nothing was saved:\n  " + "\n  ".join(errors))
