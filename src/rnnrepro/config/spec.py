"""Run specifications: every hyperparameter of one training job, validated, with a stable id.

The id is a readable prefix plus a hash of every field of the spec, so two studies that ask
for the same run share it, and changing one field gives a new run. Where and how a run is
computed (device, threads, checkpoints, implementation, GPU sharing) is not in the spec: it
is an `Execution`, kept beside it, and never changes a run's id.
"""

import dataclasses
import difflib
import hashlib
import json
import math
from dataclasses import dataclass, field, fields

MODELS = ("rnn", "lstm")
OPTIMIZERS = ("rmsprop", "adam", "sgd")
DEVICES = ("auto", "cpu", "cuda")
ENCODINGS = ("scalar", "onehot")
# auto: the fastest path measured for the model on the device (rnnrepro bench); fused: torch's
# fused kernel on our parameters; loop: the reference loop of the equations; bptt: the
# hand-written recurrence and backward pass (bptt.py); graph: the whole step in one CUDA
# graph (CUDA only: elsewhere it runs as auto).
IMPLS = ("auto", "fused", "loop", "bptt", "graph")
INITS = ("default", "normal", "xavier", "orthogonal")
# how a CPU run's floats are computed: as the CPU offers, or alike on every x86-64 CPU
# (numerics.py)
NUMERICS = ("native", "portable")
# the fields that take one of a few words, and those words (config/README.md lists them)
CHOICES = {"model": MODELS, "optimizer": OPTIMIZERS, "device": DEVICES, "impl": IMPLS,
           "input_encoding": ENCODINGS, "init": INITS, "numerics": NUMERICS}


class SpecError(ValueError):
    """A value refused, naming it; `field`: the spec or config key it is about, where one is."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


# what the types of values are called in messages (checks.py says the schema's types alike)
TYPE_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "true or false",
              "string": "text", "array": "a list", "object": "a mapping"}
_PY_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string", tuple: "array"}


FLOAT32_MAX = 3.4028234663852886e38  # parameters and rates live in float32 tensors
SEED_LIMIT = 2 ** 63  # torch generators take a signed 64-bit seed


def check_seed(seed, name="seed"):
    """A seed torch can take: a whole number in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise SpecError(f"{name} must be a whole number in [0, 2**63), got {seed!r}", name)
    return seed


def _check(cond, name, msg, value):
    if not cond:
        raise SpecError(f"{name} {msg}, got {value!r}", name)


def check_temperature(t, name="a temperature"):
    """`t` as a float, if it is a temperature (finite, > 0); else a SpecError naming it.
    T -> 0 is greedy sampling, asked for by name (sampling.py), never by a temperature 0."""
    if isinstance(t, bool):
        raise SpecError(f"{name} must be a number, got {t!r}", name)
    try:
        t = float(t)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a number, got {t!r}", name) from None
    if not (math.isfinite(t) and t > 0):
        raise SpecError(f"{name} must be finite and > 0, got {t!r} (for greedy sampling ask "
                        "for the method greedy)", name)
    return t


def _check_types(obj):
    """Each field holds its default's type (an int where a float is wanted becomes a float)."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        want = type(f.default) if f.default is not dataclasses.MISSING else None
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(obj, f.name, float(value))
        elif want is not None and (not isinstance(value, want) or want is int and isinstance(value, bool)):
            raise SpecError(f"{f.name} must be {TYPE_WORDS[_PY_TYPES[want]]}, got {value!r}", f.name)


RUN_ID = r"[A-Za-z0-9._-]+"  # what a run id is made of (the workflow's wildcard too)


def _word(value):
    """A field value as run-id text: letters, digits, '.', '_' and '-' only."""
    if isinstance(value, tuple):
        return "_".join(map(_word, value))
    return f"{value:g}".replace("+", "") if isinstance(value, float) else str(value)  # 1e38


class _Fields:
    """to_dict / from_dict for the frozen dataclasses below; from_dict names unknown keys."""

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def defaults(cls):
        """Every field's default, as to_dict gives it (what a run gets that sets nothing)."""
        return cls().to_dict()

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            near = {u: difflib.get_close_matches(u, known, n=1) for u in unknown}
            hints = "".join(f" ({u}: did you mean {m[0]}?)" for u, m in near.items() if m)
            raise SpecError(f"unknown {cls.label()} keys {unknown}{hints}; allowed: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class Execution(_Fields):
    """Where and how runs are computed: never part of a run's id, so changing it retrains
    nothing that is complete (config `execution:`; `rnnrepro train --help`).

    device: auto picks CUDA where it is visible. threads: torch threads per job.
    checkpoint_every: steps between resume checkpoints. impl: the palindrome step's code
    path (IMPLS). jobs_per_gpu: training jobs that may share one GPU at once (each takes a
    slot, `run/gpus.py`). runs_per_job: how many runs one training job may train: its own, then
    other runs of the workflow that nobody has trained yet, several at once in one batched
    step where their shapes agree (`run/jobs.py`); 0 means RUNS_PER_JOB_CUDA on CUDA, and 1 on
    the CPU and inside a cluster job (where others' runs may be training on other nodes).
    deterministic: what PyTorch's reproducibility notes ask for on CUDA (deterministic
    algorithms, no cuDNN autotuning, a fixed cuBLAS workspace); the CPU is deterministic
    anyway. Each summary.json records the precision settings a run trained with.
    tensorboard: a folder for live TensorBoard curves, one subfolder per run id (events.py);
    empty: none. numerics: native (the CPU's fastest kernels) or portable (the same bytes on
    every x86-64 CPU, slower: numerics.py).
    """

    device: str = "auto"
    threads: int = 1
    checkpoint_every: int = 1000
    impl: str = "auto"
    jobs_per_gpu: int = 1
    runs_per_job: int = 0
    deterministic: bool = False
    tensorboard: str = ""
    numerics: str = "native"

    RUNS_PER_JOB_CUDA = 64

    def __post_init__(self):
        _check_types(self)
        for name in ("threads", "checkpoint_every", "jobs_per_gpu"):
            _check(getattr(self, name) >= 1, name, "must be ≥ 1", getattr(self, name))
        _check(self.runs_per_job >= 0, "runs_per_job", "must be ≥ 0 (0: auto)", self.runs_per_job)
        _check(self.device in DEVICES, "device", f"must be one of {DEVICES}", self.device)
        _check(self.impl in IMPLS, "impl", f"must be one of {IMPLS}", self.impl)
        _check(self.numerics in NUMERICS, "numerics", f"must be one of {NUMERICS}", self.numerics)

    def runs_cap(self, device_type, in_cluster_job=False):
        """The most runs one job trains on a device of this type ('cpu' or 'cuda')."""
        if self.runs_per_job:
            return self.runs_per_job
        return self.RUNS_PER_JOB_CUDA if device_type == "cuda" and not in_cluster_job else 1

    @classmethod
    def label(cls):
        return "execution"


@dataclass(frozen=True)
class Common(_Fields):
    optimizer: str = "rmsprop"
    lr: float = 1e-3
    momentum: float = 0.0
    batch: int = 128
    hidden: int = 128
    steps: int = 10_000
    max_norm: float = 10.0
    seed: int = 0
    eval_every: int = 100
    log_every: int = 1

    def __post_init__(self):
        _check_types(self)
        for name in ("batch", "hidden", "steps", "eval_every", "log_every"):
            _check(getattr(self, name) >= 1, name, "must be ≥ 1", getattr(self, name))
        for name in ("lr", "max_norm"):
            v = getattr(self, name)
            _check(math.isfinite(v) and 0 < v < FLOAT32_MAX, name, "must be a positive number "
                   "(below 3.4e38, the float32 range)", v)
        check_seed(self.seed)
        _check(0 <= self.momentum < 1, "momentum", "must be in [0, 1)", self.momentum)
        _check(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {OPTIMIZERS}", self.optimizer)

    @classmethod
    def label(cls):
        return f"{cls.kind} spec"

    # what a run records, not how it trains: in the id's hash, left out of its readable part
    OBSERVED = ("eval_every", "eval_size", "log_every", "sample_every", "sample_first",
                "sample_length", "samples_per_step", "sample_temperatures")

    def prefix(self):
        """The readable part of the run id: the kind's usual fields (`base`), then every other
        training field whose value is not its default here, e.g.
        lstm-adam-len10-seed0-lr0.01-initnormal-initstd1: runs that train differently can be
        told apart by name."""
        parts, defaults = [self.base()], self.defaults()
        for key, value in self.to_dict().items():
            if key not in self.BASE + self.OBSERVED and value != defaults[key]:
                parts.append(key.replace("_", "") + _word(value))
        return "-".join(parts)

    # The rows a run writes: the loop (train/loop.py) asks logs/evaluates at each step, and
    # analysis/tables.py checks a run's files whole against logged_steps/eval_steps
    FLUSH = 50  # steps between transfers of the step metrics from the device (a timing row)

    def logs(self, step):
        """Whether metrics.csv has a row for `step` (from 1): every log_every-th, and the last."""
        return step % self.log_every == 0 or step == self.steps

    def evaluates(self, step):
        """Whether eval.csv has a row for `step`: 0 (before training), every eval_every-th,
        and the last."""
        return step % self.eval_every == 0 or step == self.steps

    def logged_steps(self):
        """The steps of metrics.csv's rows, in order (those `logs` says)."""
        return [*range(self.log_every, self.steps + 1, self.log_every),
                *([self.steps] if self.steps % self.log_every else [])]

    def eval_steps(self):
        """The steps of eval.csv's rows, in order (those `evaluates` says)."""
        return [*range(0, self.steps + 1, self.eval_every),
                *([self.steps] if self.steps % self.eval_every else [])]

    def run_id(self):
        """`<readable prefix>-<hash of every field>`."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()
        return f"{self.prefix()}-{digest[:10]}"


@dataclass(frozen=True)
class PalindromeSpec(Common):
    """One palindrome run: the course's train.py defaults (SPEC §3)."""

    kind = "palindrome"
    model: str = "lstm"
    input_length: int = 10
    input_encoding: str = "scalar"
    init: str = "default"
    init_std: float = 0.01
    eval_size: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        _check(self.model in MODELS, "model", f"must be one of {MODELS}", self.model)
        _check(self.input_length >= 1, "input_length", "must be ≥ 1", self.input_length)
        _check(self.input_encoding in ENCODINGS, "input_encoding", f"must be one of {ENCODINGS}",
               self.input_encoding)
        _check(self.init in INITS, "init", f"must be one of {INITS}", self.init)
        _check(math.isfinite(self.init_std) and 0 < self.init_std < FLOAT32_MAX, "init_std",
               "must be a positive number (below 3.4e38)", self.init_std)
        if self.init != "normal":  # only N(0, std) reads init_std: one run id per init
            object.__setattr__(self, "init_std", type(self).init_std)
        _check(self.eval_size >= 1, "eval_size", "must be ≥ 1", self.eval_size)

    BASE = ("model", "optimizer", "input_length", "seed")

    def base(self):
        return f"{self.model}-{self.optimizer}-len{self.input_length}-seed{self.seed}"


@dataclass(frozen=True)
class TextSpec(Common):
    """One text-generation run: the course defaults for part 3, 30k steps as the report."""

    kind = "text"
    optimizer: str = "rmsprop"
    lr: float = 2e-3
    batch: int = 64
    steps: int = 30_000
    max_norm: float = 5.0
    eval_every: int = 500
    layers: int = 2
    seq_length: int = 30
    temperature: float = 1.0
    lr_decay: float = 1.0
    lr_step: int = 5000
    dropout: float = 0.0
    val_fraction: float = 0.05
    sample_every: int = 5000
    sample_first: int = 100
    sample_length: int = 30
    samples_per_step: int = 3
    sample_temperatures: tuple = field(default=())

    def __post_init__(self):
        super().__post_init__()
        for name in ("layers", "seq_length", "lr_step", "sample_every", "sample_length",
                     "samples_per_step"):
            _check(getattr(self, name) >= 1, name, "must be ≥ 1", getattr(self, name))
        _check(self.sample_first >= 0, "sample_first", "must be ≥ 0", self.sample_first)
        check_temperature(self.temperature, "temperature")
        _check(0 < self.lr_decay <= 1, "lr_decay", "must be in (0, 1]", self.lr_decay)
        _check(0 <= self.dropout < 1, "dropout", "must be in [0, 1)", self.dropout)
        _check(self.dropout == 0 or self.layers > 1, "dropout",
               "acts between LSTM layers only: with layers 1 it must be 0", self.dropout)
        _check(0 < self.val_fraction < 1, "val_fraction", "must be in (0, 1)", self.val_fraction)
        temps = tuple(check_temperature(t, "sample_temperatures") for t in self.sample_temperatures)
        object.__setattr__(self, "sample_temperatures", temps)

    BASE = ("optimizer", "temperature", "seed")

    def base(self):
        return f"text-{self.optimizer}-T{_word(self.temperature)}-seed{self.seed}"

    def sampling_temperatures(self):
        return self.sample_temperatures or (self.temperature,)

    def sample_steps(self):
        steps = set(range(self.sample_every, self.steps + 1, self.sample_every)) | {self.steps}
        if 0 < self.sample_first <= self.steps:
            steps.add(self.sample_first)
        return sorted(steps)

    def sample_step_count(self):
        """len(sample_steps()), counted without listing them (a spec may ask for billions)."""
        first = 0 < self.sample_first <= self.steps and self.sample_first % self.sample_every \
            and self.sample_first != self.steps
        return self.steps // self.sample_every + bool(self.steps % self.sample_every) + bool(first)


SPECS = {"palindrome": PalindromeSpec, "text": TextSpec}


def reference_order(temperature, seed):
    """Sort key of the report's reference text run, the first in this order: the training
    temperature closest to 1, then the lowest seed."""
    return abs(temperature - 1.0), seed
