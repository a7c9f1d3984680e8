"""The character-level model of SPEC §3."""

import torch
import torch.nn.functional as F
from torch import nn


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
