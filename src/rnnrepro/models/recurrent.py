"""What the palindrome models share, written to the equations of SPEC §2.

Notation follows the assignment: d input size, n hidden units, x_t the input at step t.
The LSTM's four gate matrices are stacked into one weight, in the block order (i, f, g, o)
that PyTorch's fused kernels use, so the same parameters drive both the readable
reference loop (`cell`, the equations line by line) and the fused kernel (`forward`).
The fused kernels add a second bias; we pass zeros for it, and a test checks that the
two paths agree.
"""

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from rnnrepro.config.spec import INITS
from rnnrepro.models.bptt import layer

# cuDNN warns that our separate W_x, W_h, b are not one flat buffer; it packs them per call,
# a copy of a few hundred kilobytes, measured as noise next to the step.
warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")

INIT_DOC = {
    "default": "PyTorch's RNN default: every weight and bias ~ U(-1/sqrt(n), 1/sqrt(n))",
    "normal": "weights ~ N(0, std^2), biases 0",
    "xavier": "weights Xavier/Glorot-uniform per gate block, biases 0",
    "orthogonal": "recurrent blocks orthogonal, input and readout weights Xavier-uniform, biases 0",
}


class Recurrent(nn.Module):
    """Shared parts of the palindrome models: parameters, input encoding, readout.

    Parameters: W_x (G·n × d), W_h (G·n × n), b (G·n) for the G gate blocks of the cell,
    and the readout W_p (classes × n), b_p (classes): p_T = W_p h_T + b_p, h_0 = 0.
    Input is one digit per step, fed as a scalar (d = 1, as the original) or one-hot.
    """

    gates = 1

    def __init__(self, hidden=128, classes=10, onehot=False, init="default", init_std=0.01):
        super().__init__()
        self.hidden, self.classes, self.onehot = hidden, classes, onehot
        d, gn = (classes if onehot else 1), self.gates * hidden
        self.W_x = nn.Parameter(torch.empty(gn, d))
        self.W_h = nn.Parameter(torch.empty(gn, hidden))
        self.b = nn.Parameter(torch.empty(gn))
        self.W_p = nn.Parameter(torch.empty(classes, hidden))
        self.b_p = nn.Parameter(torch.empty(classes))
        self.register_buffer("zero_bias", torch.zeros(gn), persistent=False)
        initialise(self, init, init_std)

    def encode(self, digits):
        """(B, T) integer digits -> (B, T, d) float inputs."""
        if self.onehot:
            return F.one_hot(digits, self.classes).to(self.W_x.dtype)
        return digits.unsqueeze(-1).to(self.W_x.dtype)

    def cell_parameters(self):
        return self.W_x.numel() + self.W_h.numel() + self.b.numel()

    def initial_state(self, batch, ref):
        raise NotImplementedError

    def cell(self, x_t, state):
        raise NotImplementedError

    def states(self, digits):
        """Reference path: the hidden state h_t after every step, by the equations."""
        state, hs = self.initial_state(digits.shape[0], self.W_h), []
        for x_t in self.encode(digits).unbind(1):
            state = self.cell(x_t, state)
            hs.append(state[0])
        return hs

    def forward(self, digits, fast=True):
        """Logits p_T for the digit after the input sequence."""
        h = self.fused(self.encode(digits)) if fast else self.states(digits)[-1]
        return F.linear(h, self.W_p, self.b_p)

    def forward_bptt(self, digits):
        """Logits p_T by the hand-written recurrence and backward pass (`impl bptt`, below).

        Same parameters and the same function as `forward`; a test checks values and
        gradients against the reference loop.
        """
        x = digits.t()  # time-major (T, B): ids for one-hot inputs, else the digit itself
        x = x if self.onehot else x.unsqueeze(-1).to(self.W_x.dtype)
        h = layer(self.gates, x, self.W_x, self.b, self.W_h, last_only=True)
        return F.linear(h, self.W_p, self.b_p)


SATURATED = 0.99  # |h| at or above this counts as a saturated hidden unit
HEALTH_SIZE = 1000  # held-out sequences the health measures run on


@torch.no_grad()
def health(model, digits):
    """How close a palindrome model is to the regime where gradients cannot flow: the share
    of hidden activations h_t (every unit, every step of `digits`) with |h_t| ≥ SATURATED,
    where tanh' ≤ 0.02, and the largest singular value of the recurrent weights W_h (all
    gate blocks stacked), whose growth makes a gradient explode."""
    W = model.W_h.double()
    if not W.isfinite().all():  # a diverged run (a stack evaluates it until it is dropped)
        return {"saturation": math.nan, "w_h_norm": math.nan}
    hs = torch.stack(model.states(digits[:HEALTH_SIZE]))
    return {"saturation": (hs.abs() >= SATURATED).double().mean().item(),
            "w_h_norm": torch.linalg.matrix_norm(W, ord=2).item()}


def initialise(model, scheme="default", std=0.01):
    """Draw the weights of a `Recurrent` model by the named scheme (see INIT_DOC); further
    parameters of a subclass (the phased LSTM's timing) are its own to draw."""
    if scheme not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {scheme!r}")
    bound = 1 / math.sqrt(model.hidden)
    with torch.no_grad():
        for name, p in model.named_parameters(recurse=False):
            if name not in ("W_x", "W_h", "b", "W_p", "b_p"):
                continue
            if scheme == "default":
                p.uniform_(-bound, bound)
            elif p.ndim == 1:
                p.zero_()
            elif scheme == "normal":
                p.normal_(0.0, std)
            else:
                for block in p.chunk(model.gates if name != "W_p" else 1, dim=0):
                    if scheme == "orthogonal" and name == "W_h":
                        nn.init.orthogonal_(block)
                    else:
                        nn.init.xavier_uniform_(block)
