"""The text task: one run of the character-level model on the corpus, with its samples."""

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnrepro.config.spec import Execution
from rnnrepro.data.corpus import Corpus
from rnnrepro.data.seeds import derived_seed
from rnnrepro.files import EVALS, load_checkpoint, torch_save, write_jsonl
from rnnrepro.models import count_parameters
from rnnrepro.models.sampling import samples_at
from rnnrepro.models.text import TextGenerationModel
from rnnrepro.train.loop import fit
from rnnrepro.train.tasks import SingleRun

log = logging.getLogger("rnnrepro")

BEST_CHECKPOINT = "best.pt"  # a text run's weights at its lowest held-out loss, in checkpoints/
# held-out windows per forward pass of an evaluation: it bounds the memory an evaluation takes,
# and sets the order its sums are taken in (a run's eval.csv depends on it)
EVAL_CHUNK = 512


def train_text(spec, corpus, out, execution=Execution(), **kw):
    corpus = corpus if isinstance(corpus, Corpus) else Corpus.from_file(corpus, spec.val_fraction)
    return fit(spec, out, lambda device: TextTask(spec, device, corpus, execution.impl),
               execution, **kw)


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
        if impl not in ("auto", self.impl):
            log.info("impl %s: a text run takes impl %s here (see TextTask)", impl, self.impl)
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
        # the training temperature divides the logits in training and in evaluation alike
        # (SPEC §3): held-out loss and bpc are those of the model at that temperature
        logits = logits / self.spec.temperature
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return loss, (logits.argmax(-1) == y).float().mean()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        loss = correct = 0.0
        for x, y in zip(*(t.split(EVAL_CHUNK) for t in self.val)):
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

    def after_step(self, step, runs):
        """After an evaluation whose held-out loss is the lowest since step 0: keep those
        weights (checkpoints/best.pt). At a sample step: keep a checkpoint of the weights
        and record samples. At the last step: samples of best.pt too (best_samples.jsonl)."""
        (run,) = runs
        s, state, out = self.spec, run.state, Path(run.out)
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
        gen = torch.Generator(device=self.device).manual_seed(derived_seed(s.seed, "samples", step))
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
