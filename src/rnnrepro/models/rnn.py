"""The vanilla RNN of SPEC §2 (its parameters, encoding and readout: recurrent.Recurrent)."""

import torch

from rnnrepro.models.recurrent import Recurrent


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


Model = VanillaRNN
