"""The LSTM of SPEC §2 (its parameters, encoding and readout: recurrent.Recurrent)."""

import torch

from rnnrepro.models.recurrent import Recurrent


class LSTM(Recurrent):
    """g = tanh(·), i, f, o = σ(·); c_t = g ⊙ i + c_{t-1} ⊙ f; h_t = tanh(c_t) ⊙ o."""

    gates = 4

    @staticmethod
    def cell_formula(n, d):
        """The report's Question 1.5(b): trainable parameters of one LSTM cell."""
        return 4 * (n * d + n * n + n)

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


Model = LSTM
