"""The frequency-discrimination task (kind `frequency`): one run of the LSTM or the phased
LSTM on sine waves sampled at regular or random times (data/frequency.py), scored on a fixed
held-out set drawn on the CPU, so that it is the same on every device."""

import logging
import math

import torch
import torch.nn.functional as F

from rnnrepro.config.kinds import EVALS, GATE_COLUMNS
from rnnrepro.config.spec import Execution
from rnnrepro.data.frequency import frequency_batch
from rnnrepro.models import count_parameters
from rnnrepro.models.frequency import MODELS
from rnnrepro.train.fastpath import resolve_impl
from rnnrepro.train.loop import fit
from rnnrepro.train.phased import gate_measures, initial_timing, timing_metadata
from rnnrepro.train.tasks import SingleRun

log = logging.getLogger("rnnrepro")

TEST_SEED = 1610_09513  # the held-out set's seed (the paper's arXiv number), one per sampling
EVAL_CHUNK = 1000  # held-out sequences per forward pass: sets the order of an evaluation's sums


def frequency_test_set(sampling, size):
    gen = torch.Generator().manual_seed(TEST_SEED + ("regular", "async", "fine").index(sampling))
    return frequency_batch(size, sampling, gen)


def train_frequency(spec, out, execution=Execution(), **kw):
    return fit(spec, out, lambda device: FrequencyTask(spec, device, execution.impl),
               execution, **kw)


class FrequencyTask(SingleRun):
    eval_columns = EVALS["frequency"]

    def __init__(self, spec, device, impl="auto"):
        self.spec, self.device = spec, device
        timing = spec.timing() if spec.model == "phased" else {}
        self.model = MODELS[spec.model](spec.hidden, **timing).to(device)
        self.initial = initial_timing(self.model) if spec.model == "phased" else None
        # the reference loop where asked for; else the fast path (torch's LSTM kernel, or the
        # phased LSTM's fused cell), captured in a CUDA graph under impl graph (every batch
        # is padded to one shape, so one capture serves every step)
        self.impl = resolve_impl("frequency", impl, device)
        if impl not in ("auto", self.impl):
            log.info("impl %s: a frequency run takes impl %s", impl, self.impl)
        self.test = [t.to(device) for t in frequency_test_set(spec.sampling, spec.eval_size)]

    def draw(self, gens):
        values, times, mask, labels = frequency_batch(self.spec.batch, self.spec.sampling,
                                                      gens[0], self.device)
        return (values[..., 0], times, mask), labels

    def loss(self, x, y):
        logits = self.model(*x, fast=self.impl != "loop")
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        loss = correct = 0.0
        values, times, mask, labels = self.test
        for v, t, m, y in zip(*(a.split(EVAL_CHUNK) for a in (values[..., 0], times, mask, labels))):
            logits = self.model(v, t, m, fast=self.impl != "loop")
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
        n = len(labels)
        row = {"loss": loss / n, "accuracy": correct / n}
        if self.spec.model == "phased":
            row |= gate_measures(self.model, times, mask)
        else:  # no gate to measure
            row |= dict.fromkeys(GATE_COLUMNS, math.nan)
        self.model.train()
        return [row]

    def metadata(self, r=0):
        meta = {"parameters": count_parameters(self.model), "input_dim": self.model.W_x.shape[1]}
        if self.initial is not None:
            meta |= timing_metadata(self.model, self.initial)
        return meta

    def checkpoint_extra(self, r=0):
        return {"kind": "frequency", "spec": self.spec.to_dict()}
