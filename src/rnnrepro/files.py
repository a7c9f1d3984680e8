"""Files: atomic writes (a killed job never leaves a half-written file, a full disk leaves
the old one), checked reads (a file read back that is not what the pipeline wrote is named
with its path and what is wrong), checkpoints that load without running code, provenance."""

import errno
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

# What a run directory's tables hold (train/loop.py writes them, analysis/tables.py reads them back).
METRICS = ("step", "loss", "accuracy", "grad_norm")
TIMING = ("step", "elapsed_s", "examples_per_s")
EVALS = {"palindrome": ("step", "loss", "accuracy", "saturation", "w_h_norm"),
         "text": ("step", "loss", "accuracy", "bpc")}
SAMPLE_KEYS = ("step", "temperature", "method", "first", "text")
SUMMARY_KEYS = ("run_id", "kind", "spec", "eval_final", "wall_seconds")

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, write, mode="w"):
    """Call write(f) on a temporary file beside `path`, then rename it into place."""
    atomic_writes([(path, write, mode)])


def atomic_writes(files):
    """Several files written as `atomic_write` writes one, every one of them before any is
    renamed into place: a crash while writing leaves all the old files, and only one in the
    brief run of renames can leave some old and some new. files: (path, write, mode)."""
    temps, path = [], None
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
    except BaseException as err:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
        # torch.save reports a short write as "[enforce fail at inline_container.cc] unexpected pos"
        if full or (isinstance(err, RuntimeError) and "inline_container" in str(err)):
            raise WriteError(path, err) from None
        raise


class WriteError(OSError):
    """A file that could not be written (a full disk, a quota): names it and the space left;
    the file as it was before stays in place."""

    def __init__(self, path, cause):
        path = Path(path)
        try:
            free = f"{shutil.disk_usage(path.parent).free / 2 ** 20:.1f} MiB free there"
        except OSError:
            free = "free space unknown"
        first = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else type(cause).__name__
        super().__init__(errno.ENOSPC, f"could not write {path} ({first}; {free}): the disk or "
                         "quota is full. Nothing half-written was left and the file as it was "
                         "is kept; free some space and run again (finished runs are not redone)")

    def __str__(self):
        return self.strerror


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


class BadFile(ValueError):
    """A file the pipeline reads back that is missing or not what it wrote: names the path,
    what is wrong, and the way out."""


@contextmanager
def _reading(path, what):
    """A missing, unreadable or non-UTF-8 file, named as a BadFile."""
    try:
        yield
    except FileNotFoundError:
        raise BadFile(f"{path}: no such file (the {what} is missing)") from None
    except UnicodeDecodeError as err:
        raise BadFile(f"{path}: not a {what}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise BadFile(f"{path}: cannot read the {what} ({err.strerror or err})") from None


def _read_text(path, what):
    with _reading(path, what):
        return Path(path).read_text(encoding="utf-8")


def read_json(path, what="JSON file", keys=()):
    """A JSON object the pipeline wrote, checked: it parses, is an object and holds `keys`."""
    try:
        obj = json.loads(_read_text(path, what))
    except ValueError as err:
        if isinstance(err, BadFile):
            raise
        raise BadFile(f"{path}: not a readable {what} (not JSON: {err})") from None
    if not isinstance(obj, dict):
        raise BadFile(f"{path}: not a {what}: a JSON object is wanted, it holds a {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise BadFile(f"{path}: not a {what} of this project (no {', '.join(missing)})")
    return obj


def read_jsonl(path, what="JSON-lines file", keys=()):
    """One JSON object per line, checked line by line (and whole: check_whole); the error
    names the line."""
    check_whole(path, what)
    rows = []
    for n, line in enumerate(_read_text(path, what).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise BadFile(f"{path}, line {n}: not a readable {what} (not JSON: {err})") from None
        missing = [k for k in keys if k not in row] if isinstance(row, dict) else list(keys) or ["an object"]
        if missing:
            raise BadFile(f"{path}, line {n}: not a {what} of this project (no {', '.join(missing)})")
        rows.append(row)
    return rows


def check_whole(path, what, sep=None):
    """A file the pipeline wrote line by line, whole: it ends with a line break (a file cut
    mid-line does not: its last value may read as another number), and, for a table (`sep`),
    no cell of it is empty. Read as a stream: a run's files can be long."""
    with _reading(path, what), open(path, "rb") as f:
        if sep:
            for n, line in enumerate(f, 1):
                cells = line.rstrip(b"\r\n").split(sep.encode())
                if b"" in cells:
                    raise BadFile(f"{path}, line {n}: the {what} has an empty cell (column "
                                  f"{cells.index(b'') + 1})")
        if f.seek(0, os.SEEK_END) and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n":
            f.seek(max(0, f.tell() - 60))
            last = f.read().rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
            raise BadFile(f"{path}: the {what} is cut mid-line (its last line ends {last!r}, with "
                          "no line break)")


def read_table(path, what="table", columns=(), numeric=(), rows=False, sep=",", whole=False):
    """A CSV (or TSV) the pipeline wrote, as a DataFrame, checked: it parses, holds `columns`,
    the `numeric` ones hold numbers (or nothing), and with `rows` at least one row; `whole`:
    also that it is whole (check_whole). The one reader of tables in the project: every error
    names the file and what is wrong."""
    import pandas as pd

    path = Path(path)
    if whole:
        check_whole(path, what, sep)
    with _reading(path, what):
        try:
            df = pd.read_csv(path, sep=sep, encoding="utf-8")
        except UnicodeDecodeError:
            raise
        except pd.errors.EmptyDataError:
            raise BadFile(f"{path}: the {what} is empty (not even a header)") from None
        except (pd.errors.ParserError, ValueError) as err:
            first = str(err).strip().splitlines()[0][:200]
            raise BadFile(f"{path}: not a readable {what} ({first})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise BadFile(f"{path}: not a {what} of this project: no column {', '.join(missing)} "
                      f"(it has {', '.join(map(str, df.columns))})")
    if rows and df.empty:
        raise BadFile(f"{path}: the {what} has a header and no rows")
    for c in numeric:
        values = pd.to_numeric(df[c], errors="coerce")
        bad = df[c].notna() & values.isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise BadFile(f"{path}, row {i + 2}: column {c} holds {df[c].iloc[i]!r}, not a number")
        df[c] = values
    return df


def write_table(path, df):
    """A DataFrame as CSV, written atomically."""
    atomic_write(path, lambda f: df.to_csv(f, index=False))


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


def precision():
    """The settings that change a run's numbers on a GPU: float32 matmul precision, TF32 in
    cuBLAS and cuDNN, cuDNN autotuning and determinism, deterministic algorithms."""
    import torch

    def fp32(backend):  # torch >= 2.9 says "none"/"tf32"; earlier ones allow_tf32
        value = getattr(backend, "fp32_precision", None)
        return value if value is not None else ("tf32" if getattr(backend, "allow_tf32", False) else "ieee")

    return {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_fp32": fp32(torch.backends.cuda.matmul),
        "cudnn_fp32": fp32(torch.backends.cudnn),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def versions():
    import torch

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
    }
