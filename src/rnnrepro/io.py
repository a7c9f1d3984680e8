"""Atomic file writes and provenance: a killed job never leaves a half-written file."""

import json
import os
import platform
import re
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
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename: a crash leaves old or new
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


class CheckpointError(ValueError):
    """A .pt file that is not a readable checkpoint of this project, named with its path."""


def load_checkpoint(path, device="cpu", keys=()):
    """A checkpoint this project wrote, loaded without running code (weights_only: tensors,
    numbers, strings and containers of them, nothing a pickle could execute); `keys` it must
    hold. Anything else is a CheckpointError that names the file and what is wrong with it."""
    import pickle

    import torch

    path = Path(path)
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:
            raise CheckpointError(f"{path} holds Python objects ({found.group(1)}), not only "
                                  "tensors and plain values: loading it could run code, so it is "
                                  "refused (this project's checkpoints never need that)") from None
        raise CheckpointError(f"{path} cannot be read as a checkpoint: it is not a file of "
                              "tensors and plain values as torch.save writes them (nothing in it "
                              "was run)") from None
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (EOFError, RuntimeError, OSError, ValueError, IndexError, KeyError, AttributeError) as err:
        what = f"{type(err).__name__}: {err}".strip().splitlines()[0][:200]
        size = path.stat().st_size if path.exists() else 0
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({size} bytes; {what}): "
                              "it is truncated, empty or not a checkpoint") from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"{path} is not a checkpoint of this project: it holds a "
                              f"{type(ck).__name__}, not a dict of its parts")
    missing = [k for k in keys if k not in ck]
    if missing:
        raise CheckpointError(f"{path} is not a checkpoint of this kind: it lacks {missing}")
    return ck


def set_aside(path):
    """Rename an unreadable file out of the way (never delete it); its new path."""
    path = Path(path)
    aside = path.with_name(f"{path.name}.unreadable")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.unreadable{n}")
    os.replace(path, aside)
    return aside


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
