"""The recurrent models of the report, written to the equations of SPEC §2.

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

from .bptt import layer
from .spec import INITS

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


class VanillaRNN(Recurrent):
    """h_t = tanh(W_hx x_t + W_hh h_{t-1} + b_h)."""

    gates = 1

    def initial_state(self, batch, ref):
        return (ref.new_zeros(batch, self.hidden),)

    def cell(self, x_t, state):
        (h,) = state
        return (torch.tanh(x_t @ self.W_x.T + h @ self.W_h.T + self.b),)

    def fused(self, x):
        h0 = x.new_zeros(1, x.shape[0], self.hidden)
        weights = (self.W_x, self.W_h, self.b, self.zero_bias)
        out, _ = torch.rnn_tanh(x, h0, weights, True, 1, 0.0, self.training, False, True)
        return out[:, -1]


class LSTM(Recurrent):
    """g = tanh(·), i, f, o = σ(·); c_t = g ⊙ i + c_{t-1} ⊙ f; h_t = tanh(c_t) ⊙ o."""

    gates = 4

    def initial_state(self, batch, ref):
        zero = ref.new_zeros(batch, self.hidden)
        return (zero, zero)

    def cell(self, x_t, state):
        h, c = state
        z = x_t @ self.W_x.T + h @ self.W_h.T + self.b
        i, f, g, o = z.chunk(4, dim=-1)
        g, i, f, o = torch.tanh(g), torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
        c = g * i + c * f
        h = torch.tanh(c) * o
        return h, c

    def fused(self, x):
        h0 = x.new_zeros(1, x.shape[0], self.hidden)
        weights = (self.W_x, self.W_h, self.b, self.zero_bias)
        out, _, _ = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, self.training, False, True)
        return out[:, -1]


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


def time_gate(t, tau, s, r_on, alpha=0.0):
    """Phased-LSTM openness k_t (Neil et al. 2016), elementwise over broadcast inputs.

    φ = ((t − s) mod τ) / τ; k = 2φ/r_on while φ < r_on/2, 2 − 2φ/r_on while φ < r_on,
    and the leak α·φ for the rest of the period (α = 0 gives the assignment's closed gate).
    """
    t = torch.as_tensor(t, dtype=torch.get_default_dtype())
    phi = torch.remainder(t - s, tau) / tau
    rise = 2 * phi / r_on
    return torch.where(phi < r_on / 2, rise, torch.where(phi < r_on, 2 - rise, alpha * phi))


class PhasedLSTM(LSTM):
    """LSTM whose updates pass only while a per-unit time gate is open (SPEC §2, Q2.1).

    c_t = k_t ⊙ c̃_t + (1 − k_t) ⊙ c_{t−1},  h_t = k_t ⊙ h̃_t + (1 − k_t) ⊙ h_{t−1},
    with c̃_t, h̃_t the ordinary LSTM update. Period τ and shift s are learned per unit
    (τ drawn log-uniformly from [e^1, e^3], s from [0, τ), as Neil et al.); r_on is fixed.
    The leak α applies while training only.
    """

    def __init__(self, hidden=128, classes=10, onehot=False, r_on=0.05, alpha=1e-3, **kw):
        super().__init__(hidden, classes, onehot, **kw)
        self.r_on, self.alpha = r_on, alpha
        self.tau = nn.Parameter(torch.empty(hidden).uniform_(1, 3).exp())
        self.s = nn.Parameter(torch.rand(hidden) * self.tau.detach())

    def states(self, digits, times=None):
        x = self.encode(digits)
        if times is None:
            times = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        h, c = self.initial_state(x.shape[0], self.W_h)
        alpha, hs = (self.alpha if self.training else 0.0), []
        for x_t, t in zip(x.unbind(1), times.unbind(1)):
            k = time_gate(t.unsqueeze(-1), self.tau, self.s, self.r_on, alpha)
            h_new, c_new = self.cell(x_t, (h, c))
            c = k * c_new + (1 - k) * c
            h = k * h_new + (1 - k) * h
            hs.append(h)
        return hs

    def forward(self, digits, times=None, fast=False):
        return F.linear(self.states(digits, times)[-1], self.W_p, self.b_p)

    def forward_bptt(self, digits, times=None):  # the reference loop: no fast path
        return self.forward(digits, times)


PALINDROME_MODELS = {"rnn": VanillaRNN, "lstm": LSTM}  # spec.MODELS; PhasedLSTM: its gate only


def initialise(model, scheme="default", std=0.01):
    """Draw the weights of a `Recurrent` model by the named scheme (see INIT_DOC)."""
    if scheme not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {scheme!r}")
    bound = 1 / math.sqrt(model.hidden)
    with torch.no_grad():
        for name, p in model.named_parameters(recurse=False):
            if name in ("tau", "s"):
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


class TextGenerationModel(nn.Module):
    """Two stacked LSTM layers and a linear readout over the character vocabulary.

    Characters enter one-hot, by an embedding lookup into a fixed identity table.
    `forward` takes and returns the recurrent state (h, c), so generation can carry it.
    """

    def __init__(self, vocab_size, hidden=128, layers=2, dropout=0.0):
        super().__init__()
        self.register_buffer("onehot", torch.eye(vocab_size), persistent=False)
        self.lstm = nn.LSTM(vocab_size, hidden, layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx, state=None):
        out, state = self.lstm(F.embedding(idx, self.onehot), state)
        return self.head(out), state


def count_parameters(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def lstm_cell_formula(n, d):
    """The report's Question 1.5(b): trainable parameters of one LSTM cell."""
    return 4 * (n * d + n * n + n)
