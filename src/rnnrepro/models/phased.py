"""The phased LSTM of SPEC §2 and §7: an LSTM whose state updates pass only while a per-unit
time gate is open (Neil, Pfeiffer and Liu 2016): on palindromes (its gate reading the step
index) and on the frequency task (reading each sample's time, models/frequency.py).

The period τ is learned as log τ, so that it stays positive whatever the optimizer does; r_on,
where it is learned, as the logit of r_on, so that it stays in (0, 1). The gradient to τ
through the modulo is PyTorch's: d/dτ of (t − s) mod τ is −floor((t − s)/τ), as in the
authors' PyTorch code (TensorFlow's cell stops it); clipping bounds the step it makes.
"""

import torch
import torch.nn.functional as F
from torch import nn

from rnnrepro.models.lstm import LSTM


def time_gate(t, tau, s, r_on, alpha=0.0):
    """Phased-LSTM openness k_t (Neil et al. 2016), elementwise over broadcast inputs.

    φ = ((t − s) mod τ) / τ; k = 2φ/r_on while φ < r_on/2, 2 − 2φ/r_on while φ < r_on,
    and the leak α·φ for the rest of the period (α = 0 gives the assignment's closed gate).
    """
    t = torch.as_tensor(t, dtype=tau.dtype if torch.is_tensor(tau) else torch.get_default_dtype())
    phi = torch.remainder(t - s, tau) / tau
    rise = 2 * phi / r_on
    return torch.where(phi < r_on / 2, rise, torch.where(phi < r_on, 2 - rise, alpha * phi))


class PhasedLSTM(LSTM):
    """LSTM whose updates pass only while a per-unit time gate is open (SPEC §2, Q2.1).

    c_t = k_t ⊙ c̃_t + (1 − k_t) ⊙ c_{t−1},  h_t = k_t ⊙ h̃_t + (1 − k_t) ⊙ h_{t−1},
    with c̃_t, h̃_t the ordinary LSTM update and k_t the time gate at the input's time t (its
    own timestamps, or the step index). Period τ = exp(U(tau_range)) (e^U(1,3) as Neil et al.)
    and shift s ~ U(0, τ) per unit (the authors' code draws s ~ U(0, 100 ms); the gate reads
    s modulo τ only, so the gates start nearly alike); r_on one value for all units. `learn`
    names which of τ, s and r_on train. The leak α applies while training only (α = 0 at evaluation).
    """

    TIMING = ("tau", "s", "r_on")

    def __init__(self, hidden=128, classes=10, onehot=False, r_on=0.05, alpha=1e-3,
                 learn=("tau", "s"), tau_range=(1.0, 3.0), **kw):
        super().__init__(hidden, classes, onehot, **kw)
        unknown = set(learn) - set(self.TIMING)
        if unknown:
            raise ValueError(f"learn takes {', '.join(self.TIMING)}, got {sorted(unknown)}")
        if not 0 < r_on <= 1:
            raise ValueError(f"r_on must be in (0, 1], got {r_on}")
        self.alpha, self.learn = alpha, tuple(learn)
        log_tau = torch.empty(hidden).uniform_(*tau_range)
        self.log_tau = nn.Parameter(log_tau, requires_grad="tau" in learn)
        self.s = nn.Parameter(torch.rand(hidden) * log_tau.exp(), requires_grad="s" in learn)
        if "r_on" in learn:  # a learned r_on moves inside (0, 1); a fixed one may be 1
            self.r_on_logit = nn.Parameter(torch.logit(torch.tensor(min(r_on, 1 - 1e-6))))
        else:
            self.register_buffer("r_on_fixed", torch.tensor(float(r_on)))

    # bounds of the learned forms: exp and sigmoid of a float32 beyond them round to 0 or 1
    LOG_TAU_MIN, R_ON_LOGIT_MAX = -20.0, 15.0

    @property
    def tau(self):
        return self.log_tau.clamp(min=self.LOG_TAU_MIN).exp()

    @property
    def r_on(self):
        if "r_on" not in self.learn:
            return self.r_on_fixed
        return torch.sigmoid(self.r_on_logit.clamp(-self.R_ON_LOGIT_MAX, self.R_ON_LOGIT_MAX))

    def gate(self, times, mask=None):
        """k_t for every step and unit, (B, T, hidden), at the input's times (B, T); 0 where
        `mask` (B, T) is False, so that a padded step holds the state."""
        alpha = self.alpha if self.training else 0.0
        k = time_gate(times.unsqueeze(-1), self.tau, self.s, self.r_on, alpha)
        return k if mask is None else k * mask.unsqueeze(-1).to(k.dtype)

    def _times(self, x, times):
        if times is None:
            times = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        return times.to(x.dtype)

    def states(self, digits, times=None, mask=None):
        """Reference path: the equations, one step at a time."""
        x = self.encode(digits)
        times = self._times(x, times)
        h, c = self.initial_state(x.shape[0], self.W_h)
        alpha, hs = (self.alpha if self.training else 0.0), []
        ones = torch.ones_like(times, dtype=torch.bool)
        for x_t, t, m in zip(x.unbind(1), times.unbind(1), (ones if mask is None else mask).unbind(1)):
            k = time_gate(t.unsqueeze(-1), self.tau, self.s, self.r_on, alpha) * m.unsqueeze(-1)
            h_new, c_new = self.cell(x_t, (h, c))
            c = k * c_new + (1 - k) * c
            h = k * h_new + (1 - k) * h
            hs.append(h)
        return hs

    def fused(self, x, times=None, mask=None):
        """The last hidden state by the fast path: the gate for every step at once, the LSTM
        update by torch's cell (fused on CUDA), then the gate's interpolation."""
        k = self.gate(self._times(x, times), mask)
        h, c = self.initial_state(x.shape[0], self.W_h)
        for x_t, k_t in zip(x.unbind(1), k.unbind(1)):
            h_new, c_new = torch.lstm_cell(x_t, (h, c), self.W_x, self.W_h, self.b, self.zero_bias)
            c = torch.lerp(c, c_new, k_t)
            h = torch.lerp(h, h_new, k_t)
        return h

    def forward(self, digits, times=None, mask=None, fast=True):
        h = (self.fused(self.encode(digits), times, mask) if fast
             else self.states(digits, times, mask)[-1])
        return F.linear(h, self.W_p, self.b_p)

    def forward_bptt(self, digits, times=None, mask=None):  # no hand-written backward: fused
        return self.forward(digits, times, mask)


Model = PhasedLSTM
