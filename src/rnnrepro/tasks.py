"""The tasks `fit_unit` trains: what one run of a kind learns from (batches, loss, held-out
evaluation, what its checkpoints and summary carry), and which code path (`impl`) its step
takes. A stack of palindrome runs is a task too (stack.py).
"""

import logging
import math
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from . import data as D
from .io import EVALS, load_checkpoint, torch_save, write_jsonl
from .models import (INIT_DOC, PALINDROME_MODELS, TextGenerationModel, count_parameters, health,
                     lstm_cell_formula)
from .sampling import samples_at

log = logging.getLogger("rnnrepro")

BEST_CHECKPOINT = "best.pt"  # a text run's weights at its lowest held-out loss, in checkpoints/


# What `impl auto` runs, per device and model: the fastest path `rnnrepro bench` measured
# (benchmarks/README.md, "impl auto"); on CUDA one cuDNN kernel beats any per-step loop.
AUTO_IMPL = {("cpu", "rnn"): "bptt", ("cpu", "lstm"): "fused"}


def resolve_impl(model, impl, device):
    """The path a palindrome run of `model` takes on `device` for the execution's `impl`:
    fused, loop, bptt or graph."""
    if impl == "graph" and device.type != "cuda":
        log.info("impl graph needs CUDA; on %s the run takes impl auto", device.type)
        impl = "auto"
    if impl == "auto":
        impl = AUTO_IMPL.get((device.type, model), "fused")
    return impl


def palindrome_metadata(spec, model):
    d = model.W_x.shape[1]
    return {
        "init": {"scheme": spec.init, "std": spec.init_std if spec.init == "normal" else None,
                 "description": INIT_DOC[spec.init]},
        "parameters": count_parameters(model),
        "cell_parameters": model.cell_parameters() if spec.model == "lstm" else None,
        "cell_formula": lstm_cell_formula(spec.hidden, d) if spec.model == "lstm" else None,
        "input_dim": d,
    }


class Task:
    """What `fit_unit` asks of every task, where a task has nothing to add."""

    stacked = False

    def scheduler(self, opt):
        return None

    def wants(self, step):
        return False

    def after_step(self, step, state, out):
        pass

    def identity(self, r=0):
        """What a run's resume.pt must have been written with, beyond its run id."""
        return {}


class SingleRun(Task):
    """The parts of a one-run task (S = 1) that `fit_unit` asks every task for."""

    S = 1

    def params(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def member_state(self, r=0):
        return self.model.state_dict()

    def load_member(self, r, state):
        self.model.load_state_dict(state)


class PalindromeTask(SingleRun):
    eval_columns = EVALS["palindrome"]

    def __init__(self, spec, device, impl="auto"):
        self.spec, self.device = spec, device
        cls = PALINDROME_MODELS[spec.model]
        self.model = cls(spec.hidden, onehot=spec.input_encoding == "onehot",
                         init=spec.init, init_std=spec.init_std).to(device)
        self.test = [t.to(device) for t in D.palindrome_test_set(spec.input_length, spec.eval_size)]
        self.impl = resolve_impl(spec.model, impl, device)
        model = self.model
        # graph: the fused path, captured with the rest of the step (GraphStep)
        self.forward = {"fused": partial(model, fast=True), "graph": partial(model, fast=True),
                        "loop": partial(model, fast=False), "bptt": model.forward_bptt}[self.impl]

    def batch(self, gen):
        return D.palindrome_batch(self.spec.batch, self.spec.input_length, gen, self.device)

    def loss(self, x, y):
        logits = self.forward(x)
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        loss = correct = 0.0
        for x, y in zip(*(t.split(4096) for t in self.test)):
            logits = self.forward(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
        self.model.train()
        n = len(self.test[1])
        return [{"loss": loss / n, "accuracy": correct / n, **health(self.model, self.test[0])}]

    def metadata(self, r=0):
        return palindrome_metadata(self.spec, self.model)

    def checkpoint_extra(self, r=0):
        return {"kind": "palindrome", "spec": self.spec.to_dict()}


class TextTask(SingleRun):
    eval_columns = EVALS["text"]
    # torch's LSTM kernel on every device: a hand-written first layer (bptt.layer on the
    # one-hot ids) measured no faster on CPU once the allocator stopped page faulting, and
    # a hand-written second layer slower; so training runs the same `forward` as sampling.
    # impl graph captures that step in a CUDA graph where nothing in it changes between
    # steps but the batch (no dropout, no learning-rate schedule).

    def __init__(self, spec, device, corpus, impl="auto"):
        corpus.check_length(spec.seq_length)
        self.spec, self.device, self.corpus = spec, device, corpus
        self.impl = ("graph" if impl == "graph" and device.type == "cuda" and spec.dropout == 0
                     and spec.lr_decay == 1 else "fused")
        self.model = TextGenerationModel(len(corpus.vocab), spec.hidden, spec.layers,
                                         spec.dropout).to(device)
        self.data = corpus.data.to(device)
        self.val = [t.to(device) for t in corpus.validation(spec.seq_length)]
        self.sample_steps = set(spec.sample_steps())

    def batch(self, gen):
        s = self.spec
        return self.corpus.batch(s.batch, s.seq_length, gen, self.device, self.data)

    def loss(self, x, y):
        logits, _ = self.model(x)
        logits = logits / self.spec.temperature
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return loss, (logits.argmax(-1) == y).float().mean()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        loss = correct = 0.0
        for x, y in zip(*(t.split(512) for t in self.val)):
            logits = self.model(x)[0] / self.spec.temperature
            loss += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
        self.model.train()
        n = self.val[1].numel()
        return [{"loss": loss / n, "accuracy": correct / n, "bpc": loss / n / math.log(2)}]

    def scheduler(self, opt):
        if self.spec.lr_decay < 1:
            return torch.optim.lr_scheduler.StepLR(opt, self.spec.lr_step, self.spec.lr_decay)
        return None

    def wants(self, step):
        return step in self.sample_steps

    def after_step(self, step, state, out):
        """After an evaluation whose held-out loss is the lowest since step 0: keep those
        weights (checkpoints/best.pt). At a sample step: keep a checkpoint of the weights
        and record samples. At the last step: samples of best.pt too (best_samples.jsonl)."""
        s, out = self.spec, Path(out)
        evals = state["evals"]
        if evals and evals[-1]["step"] == step:
            earlier = [e["loss"] for e in evals[:-1] if e["step"] > 0]
            if not earlier or evals[-1]["loss"] < min(earlier):
                torch_save(self.checkpoint_extra() | {"step": step, "model": self.model.state_dict()},
                           out / "checkpoints" / BEST_CHECKPOINT)
        if step in self.sample_steps:
            torch_save(self.checkpoint_extra() | {"step": step, "model": self.model.state_dict()},
                       out / "checkpoints" / f"step_{step:06d}.pt")
            state["samples"] += self.samples(self.model, step)
        if step == s.steps:
            best = load_checkpoint(out / "checkpoints" / BEST_CHECKPOINT, self.device,
                                   keys=("step", "model"))
            model = TextGenerationModel(len(self.corpus.vocab), s.hidden, s.layers,
                                        s.dropout).to(self.device)
            model.load_state_dict(best["model"])
            write_jsonl(out / "best_samples.jsonl", self.samples(model, best["step"]))

    def samples(self, model, step):
        """The samples of `model` at `step`: the same first characters and random draws
        for the same step, whichever checkpoint they come from."""
        s = self.spec
        gen = torch.Generator(device=self.device).manual_seed(D.derived_seed(s.seed, "samples", step))
        first = torch.randint(len(self.corpus.vocab), (s.samples_per_step,), generator=gen,
                              device=self.device)
        return samples_at(model, self.corpus.vocab, first, s.sample_length,
                          s.sampling_temperatures(), gen, step)

    def metadata(self, r=0):
        return {
            "init": {"scheme": "pytorch-default",
                     "description": "torch.nn.LSTM and nn.Linear defaults: U(-1/sqrt(n), 1/sqrt(n))"},
            "parameters": count_parameters(self.model),
            "corpus": self.corpus.stats(),
        }

    def checkpoint_extra(self, r=0):
        return {"kind": "text", "spec": self.spec.to_dict(), "vocab": self.corpus.vocab}

    def identity(self, r=0):
        return {"corpus_sha256": self.corpus.sha256}


