"""The models of the frequency-discrimination task (Neil, Pfeiffer and Liu 2016, §3.1): the
phased LSTM reads each sample's value as its input and the sample's time in its gate; the
LSTM baseline reads the value and the time as two inputs. Both answer with two classes from
the state after each sequence's last real sample (data/frequency.py pads a batch)."""

import torch
import torch.nn.functional as F
from torch import nn

from rnnrepro.data.frequency import HORIZON
from rnnrepro.models.lstm import LSTM
from rnnrepro.models.phased import PhasedLSTM
from rnnrepro.models.recurrent import initialise

CLASSES = 2


class FrequencyLSTM(LSTM):
    """The LSTM of SPEC §2 on inputs (value, time / 125 ms): the time scaled into [0, 1]."""

    def __init__(self, hidden=110, **kw):
        super().__init__(hidden, classes=CLASSES, **kw)
        self.W_x = nn.Parameter(torch.empty(4 * hidden, 2))
        initialise(self)

    def encode(self, x):
        """The inputs are built by `inputs` already (the reference loop, `states`, encodes)."""
        return x

    def inputs(self, values, times):
        return torch.stack((values, times / HORIZON), dim=-1).to(self.W_x.dtype)

    def forward(self, values, times, mask, fast=True):
        """Logits from the hidden state after each sequence's last real sample."""
        x = self.inputs(values, times)
        if fast:
            h0 = x.new_zeros(1, x.shape[0], self.hidden)
            weights = (self.W_x, self.W_h, self.b, self.zero_bias)
            hs, _, _ = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, self.training, False, True)
        else:
            hs = torch.stack(self.states(x), 1)
        last = mask.sum(1) - 1
        h = hs[torch.arange(len(hs), device=hs.device), last]
        return F.linear(h, self.W_p, self.b_p)


class FrequencyPhased(PhasedLSTM):
    """The phased LSTM on the sample values (one input), its gate at the samples' times; a
    padded step holds the state (its gate is closed there)."""

    def __init__(self, hidden=110, **timing):
        super().__init__(hidden, classes=CLASSES, **timing)

    def forward(self, values, times, mask, fast=True):
        return super().forward(values, times, mask, fast=fast)


MODELS = {"lstm": FrequencyLSTM, "phased": FrequencyPhased}
