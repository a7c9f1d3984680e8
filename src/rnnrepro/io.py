"""Atomic file writes and provenance: a killed job never leaves a half-written file."""

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, write, mode="w"):
    """Call write(f) on a temporary file beside `path`, then rename it into place."""
    atomic_writes([(path, write, mode)])


def atomic_writes(files):
    """Several files written as `atomic_write` writes one, every one of them before any is
    renamed into place: a crash while writing leaves all the old files, and only one in the
    brief run of renames can leave some old and some new. files: (path, write, mode)."""
    temps = []
    try:
        for path, write, mode in files:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append((tmp, path))
            with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})) as f:
                write(f)
            os.chmod(tmp, 0o666 & ~_UMASK)
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


def fmt(v):
    """Stable text for a CSV cell: floats to 8 significant digits, None empty."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.8g}"
    return str(v)


def write_csv(path, rows, columns):
    def write(f):
        f.write(",".join(columns) + "\n")
        for row in rows:
            f.write(",".join(fmt(row.get(c)) for c in columns) + "\n")

    atomic_write(path, write)


def write_json(path, obj):
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n"))


def write_jsonl(path, rows):
    atomic_write(path, lambda f: f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def torch_save(obj, path):
    import torch

    atomic_write(path, lambda f: torch.save(obj, f), mode="wb")


def torch_saves(items):
    """Several (obj, path) saved together (`atomic_writes`)."""
    import torch

    atomic_writes([(path, lambda f, obj=obj: torch.save(obj, f), "wb") for obj, path in items])


def describe_device(device):
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'s' * (n != 1)})"


def versions():
    import torch

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
    }
