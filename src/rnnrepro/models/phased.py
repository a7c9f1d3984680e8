"""The phased LSTM of SPEC §2: an LSTM whose state updates pass only while a per-unit time
gate is open (Neil, Pfeiffer and Liu 2016)."""

import torch
import torch.nn.functional as F
from torch import nn

from rnnrepro.models.lstm import LSTM


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
