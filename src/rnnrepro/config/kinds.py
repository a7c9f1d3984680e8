"""Every kind of run, by name, and the specs of the phased-LSTM studies (SPEC §2, §7).

`palindrome` and `text` runs are specified in spec.py; the two kinds of Section 2 are here:

- `phased`: the phased LSTM on the palindrome task, its time gate reading the step index;
- `frequency`: the frequency-discrimination task of Neil, Pfeiffer and Liu (2016, §3.1), an
  LSTM (the time as its second input) or a phased LSTM (the time in its gate).

spec.py is part of every run's code (sources.run_code), so these kinds live in a module of
their own: changing them retrains their runs only. A kind's eval.csv columns are here too.
"""

import math
from dataclasses import dataclass

from rnnrepro.config.spec import (
    CHOICES,
    ENCODINGS,
    SPECS as BASE_SPECS,
    Common,
    _check,
)
from rnnrepro.files import EVALS as BASE_EVALS

TIMING = ("tau", "s", "r_on")  # the phased LSTM's timing parameters, in the order ids list them
SAMPLINGS = ("regular", "async", "fine")  # data/frequency.py: every 1 ms, random times, 0.1 ms
FREQUENCY_MODELS = ("lstm", "phased")

# the gate's measures at each evaluation (NaN for a run without a gate): the share of
# (step, unit) pairs whose gate is open (k > 0), the share of units open at the first step
# (those that can read the first input at all), the median period and r_on
GATE_COLUMNS = ("open_share", "first_open", "tau_median", "r_on")
EVALS = {**BASE_EVALS,
         "phased": (*BASE_EVALS["palindrome"], *GATE_COLUMNS),
         "frequency": ("step", "loss", "accuracy", *GATE_COLUMNS)}


@dataclass(frozen=True)
class Timing:
    """The phased LSTM's timing: τ = exp(U(tau_low, tau_high)) per unit (in the task's time
    unit: steps on palindromes, ms on the frequency task), shift s ~ U(0, τ), the open ratio
    r_on, the leak α while training, and which of τ, s and r_on are learned."""

    tau_low: float = 1.0
    tau_high: float = 3.0
    r_on: float = 0.05
    alpha: float = 1e-3
    learn: tuple = ("tau", "s")

    def check_timing(self):
        for name in ("tau_low", "tau_high"):
            v = getattr(self, name)
            _check(math.isfinite(v) and -20 <= v <= 20, name, "must be a log period in [-20, 20]", v)
        _check(self.tau_low <= self.tau_high, "tau_high", f"must be ≥ tau_low ({self.tau_low})",
               self.tau_high)
        _check(0 < self.r_on <= 1, "r_on", "must be in (0, 1]", self.r_on)
        _check(0 <= self.alpha < 1, "alpha", "must be in [0, 1)", self.alpha)
        learn = tuple(self.learn)
        _check(all(isinstance(x, str) for x in learn) and set(learn) <= set(TIMING)
               and len(set(learn)) == len(learn), "learn",
               f"must list some of {', '.join(TIMING)}, each once", list(learn))
        # one run id per set: listed in TIMING's order
        object.__setattr__(self, "learn", tuple(x for x in TIMING if x in learn))

    def timing(self):
        """The PhasedLSTM arguments."""
        return {"tau_range": (self.tau_low, self.tau_high), "r_on": self.r_on,
                "alpha": self.alpha, "learn": self.learn}


@dataclass(frozen=True)
class PhasedSpec(Timing, Common):
    """One run of the phased LSTM on palindromes: the palindrome runs' fields and defaults
    (their optimizer aside: Adam, as the phased LSTM's authors), and the gate's timing."""

    kind = "phased"
    optimizer: str = "adam"
    input_length: int = 10
    input_encoding: str = "scalar"
    eval_size: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        self.check_timing()
        _check(self.input_length >= 2, "input_length", "must be ≥ 2", self.input_length)
        _check(self.input_encoding in ENCODINGS, "input_encoding", f"must be one of {ENCODINGS}",
               self.input_encoding)
        _check(self.eval_size >= 1, "eval_size", "must be ≥ 1", self.eval_size)

    BASE = ("optimizer", "input_length", "seed")
    model = "phased"  # what the palindrome tables call its model

    def base(self):
        return f"phased-{self.optimizer}-len{self.input_length}-seed{self.seed}"


@dataclass(frozen=True)
class FrequencySpec(Timing, Common):
    """One run of the frequency-discrimination task: the paper's settings (Adam 1e-3, batch
    32, 110 units, r_on 0.05, τ = e^U(1, 3) ms, all three timing parameters learned), at a
    step count the config chooses. An LSTM run has no gate: its timing fields keep their
    defaults, so that it has one run id."""

    kind = "frequency"
    model: str = "phased"
    sampling: str = "regular"
    optimizer: str = "adam"
    batch: int = 32
    hidden: int = 110
    steps: int = 3000
    eval_size: int = 2000
    learn: tuple = TIMING

    def __post_init__(self):
        super().__post_init__()
        _check(self.model in FREQUENCY_MODELS, "model", f"must be one of {FREQUENCY_MODELS}",
               self.model)
        _check(self.sampling in SAMPLINGS, "sampling", f"must be one of {SAMPLINGS}", self.sampling)
        _check(self.eval_size >= 1, "eval_size", "must be ≥ 1", self.eval_size)
        self.check_timing()
        if self.model != "phased":
            for f in ("tau_low", "tau_high", "r_on", "alpha", "learn"):
                object.__setattr__(self, f, getattr(type(self), f))

    BASE = ("model", "sampling", "seed")

    def base(self):
        return f"freq-{self.model}-{self.sampling}-seed{self.seed}"


SPECS = {**BASE_SPECS, "phased": PhasedSpec, "frequency": FrequencySpec}


def choices(kind):
    """The fields of a kind's spec that take one of a few words, and those words."""
    own = {"frequency": {"model": FREQUENCY_MODELS, "sampling": SAMPLINGS}}.get(kind, {})
    return {**CHOICES, **own}


def learn_word(learn):
    """How a set of learned timing parameters is named in tables and the report."""
    return ", ".join(learn) if learn else "none"
