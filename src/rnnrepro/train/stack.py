"""Several palindrome runs trained as one batched step (a "stack").

Runs that differ only in their seed and their initialisation share every shape, so one
step can advance all of them: their parameters are stacked along a leading run dimension
(views of one (S, P) buffer, run r in row r), the recurrence runs as one batched matmul
per time step (bptt.layer takes stacks), and the clipping and the optimizer run once over
the buffer. Each run keeps everything that makes it itself: its initialisation (drawn
exactly as a run alone draws it), its own data stream (its own generator), its own loss
(the step minimises the sum of the runs' mean losses, so each run's gradient is its own),
its own gradient clipping (the norm of its own row, torch's formula) and its own optimizer
state (RMSprop, Adam and SGD are elementwise, so one optimizer over the stacked rows
updates each row as the run's own optimizer would). Each run also keeps a model of its own
(`models[r]`), whose parameters are views of its row: checkpoints, model.pt and metadata are
those of a run trained alone, so a run can continue alone from a checkpoint written in a
stack, and in a stack from one written alone.

Used where a job trains several runs (jobs.py): on a GPU, where a step of these small models
is bound by kernel launches, S runs cost about what one does.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from rnnrepro.data import palindromes as D
from rnnrepro.files import EVALS
from rnnrepro.models import palindrome_model
from rnnrepro.models.bptt import layer
from rnnrepro.models.recurrent import health
from rnnrepro.run.phases import timed
from rnnrepro.train import palindrome
from rnnrepro.train.fastpath import flat_parameters, optimizer_step, zero_grads
from rnnrepro.train.tasks import Task

# The stacked parameters are strided views of the (S, P) buffer, and so are their gradients,
# laid out alike: torch notes that this is not the layout it would give a gradient. Nothing
# is copied.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout")


def stack_key(spec):
    """Runs with equal keys can share a step: everything but the seed and initialisation."""
    return (spec.kind, *sorted((k, v) for k, v in spec.to_dict().items()
                               if k not in ("seed", "init", "init_std")))


class StackedPalindromeTask(Task):
    """S palindrome runs of one shape (`stack_key`) as one task for `train.loop.fit_unit`."""

    eval_columns = EVALS["palindrome"]
    impl = "stack"
    stacked = True

    def __init__(self, specs, device, impl="auto"):
        keys = {stack_key(s) for s in specs}
        if len(keys) != 1:
            raise ValueError("a stack takes runs that differ only in seed and initialisation")
        self.specs, self.device, self.S = list(specs), device, len(specs)
        spec = self.spec = specs[0]
        cls = palindrome_model(spec.model)
        models = []
        for s in specs:  # each run's initial weights, drawn as a run alone draws them
            torch.manual_seed(s.seed)
            models.append(cls(s.hidden, onehot=s.input_encoding == "onehot", init=s.init,
                              init_std=s.init_std).to(device))
        self.names = [n for n, _ in models[0].named_parameters()]
        self.p = {n: nn.Parameter(torch.stack([m.get_parameter(n).detach() for m in models]))
                  for n in self.names}
        self.flat = flat_parameters(list(self.p.values()), lead=1)  # (S, P)
        for r, m in enumerate(models):
            for n in self.names:
                m.get_parameter(n).data = self.p[n].data[r]
        self.models = models
        self.model = nn.ModuleList(models)  # train()/eval() for `fit_unit`; no dropout here
        self.gates = models[0].gates
        self.test = [t.to(device) for t in D.palindrome_test_set(spec.input_length, spec.eval_size)]
        self.impl = "graph" if impl == "graph" and device.type == "cuda" else "stack"

    def params(self):
        return [self.flat]

    def member_parameters(self, r):
        return list(self.models[r].parameters())

    def scheduler(self, opt):
        # every field but seed and initialisation is the runs' own (stack_key), so one
        # schedule over the stack is each run's own
        return palindrome.palindrome_scheduler(self.spec, opt)

    def draw(self, gens):
        return self.batch(gens)

    def update(self, opt, params, max_norm, x, y, foreach=None):
        """One step of the stack on a batch: each run's loss, backward, each run's clipping,
        the optimizer; (S, 3) loss, accuracy and gradient norm before clipping."""
        zero_grads(params)  # the stack's gradients are views of one kept buffer
        losses, accs = self.loss(x, y)
        losses.sum().backward()
        norms = self.clip(max_norm)
        optimizer_step(opt)
        return torch.stack((losses.detach(), accs, norms), 1)

    def batch(self, gens):
        xs, ys = zip(*(D.palindrome_batch(self.spec.batch, self.spec.input_length, g, self.device)
                       for g in gens))
        return torch.stack(xs), torch.stack(ys)  # (S, B, T), (S, B)

    def forward(self, x):
        """(S, B, T) digits -> (S, B, classes) logits, each run by its own parameters."""
        p = self.p
        digits = x.permute(2, 0, 1)  # (T, S, B)
        inputs = digits if self.models[0].onehot else digits.unsqueeze(-1).to(p["W_x"].dtype)
        h = layer(self.gates, inputs, p["W_x"], p["b"], p["W_h"], last_only=True)
        return torch.baddbmm(p["b_p"].unsqueeze(1), h, p["W_p"].mT)

    def loss(self, x, y):
        """Each run's mean loss and batch accuracy, (S,) each."""
        logits = self.forward(x)
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        return losses.view(self.S, -1).mean(1), (logits.argmax(-1) == y).float().mean(1)

    def clip(self, max_norm):
        """Each run's gradient clipped by its own norm (torch's clip_grad_norm_ formula);
        returns the norms before clipping, (S,)."""
        norms = torch.linalg.vector_norm(self.flat.grad, dim=1)
        self.flat.grad.mul_((max_norm / (norms + 1e-6)).clamp_(max=1.0).unsqueeze(1))
        return norms

    @torch.no_grad()
    def evaluate(self):
        """Held-out loss, accuracy and health (models.health) of every run on the shared
        test set."""
        loss = torch.zeros(self.S, device=self.device, dtype=torch.float64)
        correct = torch.zeros(self.S, device=self.device, dtype=torch.float64)
        for x, y in zip(*(t.split(palindrome.EVAL_CHUNK) for t in self.test)):
            logits = palindrome.logits_in_blocks(self.forward, x.expand(self.S, *x.shape), 1)
            yy = y.expand(self.S, *y.shape)
            loss += F.cross_entropy(logits.flatten(0, 1), yy.flatten(),
                                    reduction="none").view(self.S, -1).sum(1).double()
            correct += (logits.argmax(-1) == yy).sum(1).double()
        n = len(self.test[1])
        with timed("health"):
            measures = [health(m, self.test[0]) for m in self.models]
        return [{"loss": total / n, "accuracy": c / n, **h}
                for total, c, h in zip(loss.tolist(), correct.tolist(), measures)]

    def member_state(self, r):
        """Run r's weights, as the state_dict of a model trained alone."""
        return {k: v.detach().clone() for k, v in self.models[r].state_dict().items()}

    def load_member(self, r, state):
        self.models[r].load_state_dict(state)

    def metadata(self, r):
        return palindrome.palindrome_metadata(self.specs[r], self.models[r])

    def checkpoint_extra(self, r):
        return {"kind": "palindrome", "spec": self.specs[r].to_dict()}
