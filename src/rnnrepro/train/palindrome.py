"""The palindrome task: one run of a palindrome model (its model class comes by name from
rnnrepro.models, so this module imports no model of its own)."""

from functools import partial

import torch
import torch.nn.functional as F

from rnnrepro.config.spec import Execution
from rnnrepro.data import palindromes as D
from rnnrepro.files import EVALS
from rnnrepro.models import count_parameters, palindrome_model
from rnnrepro.models.recurrent import INIT_DOC, health
from rnnrepro.run.phases import timed
from rnnrepro.train.fastpath import flat_parameters, resolve_impl
from rnnrepro.train.loop import fit
from rnnrepro.train.tasks import SingleRun


# held-out sequences per sum of an evaluation: it sets the order its sums are taken in (a
# run's eval.csv depends on it)
EVAL_CHUNK = 4096
# held-out sequences per forward pass on CPU: it keeps a step's activations in the CPU's
# cache. There each sequence's logits come out the same whatever the number of sequences
# beside it (a test compares the two), so this sets no result; 512 rather than 4096 measured
# 1.0-1.6x faster (benchmarks/README.md, "Evaluation in blocks"). On a GPU, where a forward is
# bound by kernel launches, an evaluation takes EVAL_CHUNK sequences per forward.
FORWARD_ROWS = 512


def logits_in_blocks(forward, x, dim=0):
    """forward(x), computed FORWARD_ROWS sequences (along `dim`) at a time on CPU."""
    if x.device.type != "cpu":
        return forward(x)
    return torch.cat([forward(part) for part in x.split(FORWARD_ROWS, dim)], dim)


def train_palindrome(spec, out, execution=Execution(), **kw):
    return fit(spec, out, lambda device: PalindromeTask(spec, device, execution.impl),
               execution, **kw)


def palindrome_scheduler(spec, opt):
    """A palindrome run's learning-rate schedule: none (a constant rate). A stack of runs
    takes the same (stack.py), so that a schedule given here reaches stacked runs too."""
    return None


def palindrome_metadata(spec, model):
    d = model.W_x.shape[1]
    return {
        "init": {"scheme": spec.init, "std": spec.init_std if spec.init == "normal" else None,
                 "description": INIT_DOC[spec.init]},
        "parameters": count_parameters(model),
        # the report's Question 1.5(b): a gated cell's parameters, counted and by its formula
        "cell_parameters": model.cell_parameters() if hasattr(model, "cell_formula") else None,
        "cell_formula": model.cell_formula(spec.hidden, d) if hasattr(model, "cell_formula") else None,
        "input_dim": d,
    }



class PalindromeTask(SingleRun):
    eval_columns = EVALS["palindrome"]

    def __init__(self, spec, device, impl="auto"):
        self.spec, self.device = spec, device
        cls = palindrome_model(spec.model)
        self.model = cls(spec.hidden, onehot=spec.input_encoding == "onehot",
                         init=spec.init, init_std=spec.init_std).to(device)
        self.test = [t.to(device) for t in D.palindrome_test_set(spec.input_length, spec.eval_size)]
        self.impl = resolve_impl(spec.model, impl, device)
        model = self.model
        # graph: the fused path, captured with the rest of the step (GraphStep)
        self.forward = {"fused": partial(model, fast=True), "graph": partial(model, fast=True),
                        "loop": partial(model, fast=False), "bptt": model.forward_bptt}[self.impl]

    def params(self):
        """The model's parameters; on CPU under impl bptt, one flat buffer for all of them
        (where it measured faster: benchmarks/README.md, "Flat parameters")."""
        if not hasattr(self, "_params"):
            self._params = super().params()
            if self.device.type == "cpu" and self.impl == "bptt":
                self._params = [flat_parameters(self._params)]
        return self._params

    def scheduler(self, opt):
        return palindrome_scheduler(self.spec, opt)

    def batch(self, gen):
        return D.palindrome_batch(self.spec.batch, self.spec.input_length, gen, self.device)

    def loss(self, x, y):
        logits = self.forward(x)
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        loss = correct = 0.0
        for x, y in zip(*(t.split(EVAL_CHUNK) for t in self.test)):
            logits = logits_in_blocks(self.forward, x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
        self.model.train()
        n = len(self.test[1])
        with timed("health"):
            measures = health(self.model, self.test[0])
        return [{"loss": loss / n, "accuracy": correct / n, **measures}]

    def metadata(self, r=0):
        return palindrome_metadata(self.spec, self.model)

    def checkpoint_extra(self, r=0):
        return {"kind": "palindrome", "spec": self.spec.to_dict()}
