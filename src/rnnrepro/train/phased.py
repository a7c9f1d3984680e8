"""The phased LSTM on palindromes (kind `phased`): the palindrome task, its model's time gate
reading the step index, and the gate's measures at every evaluation."""

import math

import torch

from rnnrepro.config.kinds import EVALS
from rnnrepro.config.spec import Execution
from rnnrepro.models.phased import PhasedLSTM
from rnnrepro.train.fastpath import resolve_impl
from rnnrepro.train.loop import fit
from rnnrepro.train.palindrome import PalindromeTask
from rnnrepro.data import palindromes as D


def train_phased(spec, out, execution=Execution(), **kw):
    return fit(spec, out, lambda device: PhasedTask(spec, device, execution.impl), execution, **kw)


@torch.no_grad()
def gate_measures(model, times, mask=None, chunk=1000):
    """The gate at evaluation (α = 0) at `times` (B, T): the share of (sample, unit) pairs with
    an open gate (k > 0) over the real samples, the share of units open at each sequence's first
    sample, the median period τ and r_on. Counted `chunk` sequences at a time, so that the
    gate of a whole held-out set (B × T × units) is never held at once."""
    real = torch.ones_like(times, dtype=torch.bool) if mask is None else mask
    opened = first = 0
    for t, m in zip(times.split(chunk), real.split(chunk)):
        k = model.gate(t, m) > 0  # the gate of a model in eval mode: no leak
        opened += int(k.sum())  # shut on padding (the mask), so only real samples count
        first += int(k[:, 0].sum())
    units = model.log_tau.numel()
    bad = not torch.isfinite(model.log_tau).all()
    return {"open_share": math.nan if bad else opened / (int(real.sum()) * units),
            "first_open": math.nan if bad else first / (len(times) * units),
            # the mean of the two middle values for an even count, as the tables' medians
            "tau_median": model.tau.quantile(0.5).item(), "r_on": float(model.r_on)}


def timing_metadata(model, initial):
    """What a phased run's summary says of its timing: τ, s (and r_on) at the start and end."""
    final = initial_timing(model)
    return {"timing": {"learned": list(model.learn), "tau_initial": initial["tau"],
                       "tau_final": final["tau"], "s_initial": initial["s"],
                       "s_final": final["s"], "r_on_initial": initial["r_on"],
                       "r_on_final": final["r_on"]}}


@torch.no_grad()
def initial_timing(model):
    """τ and s per unit, and r_on, as they are now."""
    return {"tau": model.tau.tolist(), "s": model.s.tolist(), "r_on": float(model.r_on)}


class PhasedTask(PalindromeTask):
    eval_columns = EVALS["phased"]

    def __init__(self, spec, device, impl="auto"):
        self.spec, self.device = spec, device
        self.model = PhasedLSTM(spec.hidden, onehot=spec.input_encoding == "onehot",
                                **spec.timing()).to(device)
        self.initial = initial_timing(self.model)
        self.test = [t.to(device) for t in D.palindrome_test_set(spec.input_length, spec.eval_size)]
        self.impl = resolve_impl("phased", impl, device)
        fast = self.impl != "loop"
        self.forward = lambda x: self.model(x, fast=fast)

    @torch.no_grad()
    def evaluate(self):
        (row,) = super().evaluate()
        self.model.eval()
        length, dtype = self.spec.input_length, self.model.W_h.dtype
        times = torch.arange(length, device=self.device, dtype=dtype).unsqueeze(0)
        row |= gate_measures(self.model, times)
        self.model.train()
        return [row]

    def metadata(self, r=0):
        from rnnrepro.models import count_parameters

        return {"parameters": count_parameters(self.model), "input_dim": self.model.W_x.shape[1],
                **timing_metadata(self.model, self.initial)}

    def checkpoint_extra(self, r=0):
        return {"kind": "phased", "spec": self.spec.to_dict()}
