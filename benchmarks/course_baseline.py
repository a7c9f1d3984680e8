"""A course-style baseline, written for `rnnrepro bench` only (the pipeline never imports it).

It is what the UvA Deep Learning 2018 assignment 2 templates lead people to write:

- palindromes: a `Dataset` whose `__getitem__` builds one palindrome at a time in numpy
  (a list comprehension of `np.random.randint` for the left half, mirrored), batched by a
  torch `DataLoader`;
- the vanilla RNN and the LSTM with one `nn.Parameter` per gate matrix and bias, the hidden
  state as columns (n × B), a Python loop over time indexing `x[:, t]`, and a matmul per
  gate per step;
- text: a `Dataset` returning lists of character ids for a random window, `torch.stack` of
  the collated batch (time-major), one-hot inputs built with `torch.zeros(...).scatter_`
  every batch, and `nn.LSTM(vocab, hidden, 2)` + `nn.Linear` (time-major, as the template).

The training step is the course's: zero_grad, forward, cross-entropy, backward, gradient
clipping, optimizer step, and the batch accuracy. `DataLoader(num_workers=0)`: the course
used one worker process, which would put the data on a second core and make the one-thread
comparison unequal; in one process the data cost is counted where it is spent.
"""

import math
import sys

import numpy as np
import torch
from torch import nn
from torch.utils import data


# --- palindromes -------------------------------------------------------------------------------
class PalindromeDataset(data.Dataset):
    def __init__(self, seq_length):
        self.seq_length = seq_length

    def __len__(self):
        return sys.maxsize  # "the number of palindromes can be very big"

    def __getitem__(self, idx):
        full_palindrome = self.generate_palindrome()
        return full_palindrome[0:-1], int(full_palindrome[-1])

    def generate_palindrome(self):
        left = [np.random.randint(0, 10) for _ in range(math.ceil(self.seq_length / 2))]
        left = np.asarray(left, dtype=np.float32)
        right = np.flip(left, 0) if self.seq_length % 2 == 0 else np.flip(left[:-1], 0)
        return np.concatenate((left, right))


def _uniform(n, *shape):
    bound = 1 / math.sqrt(n)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class VanillaRNN(nn.Module):
    def __init__(self, seq_length, input_dim, num_hidden, num_classes, batch_size):
        super().__init__()
        self.seq_length, self.num_hidden, self.batch_size = seq_length, num_hidden, batch_size
        self.W_hx = _uniform(num_hidden, num_hidden, input_dim)
        self.W_hh = _uniform(num_hidden, num_hidden, num_hidden)
        self.b_h = _uniform(num_hidden, num_hidden, 1)
        self.W_ph = _uniform(num_hidden, num_classes, num_hidden)
        self.b_p = _uniform(num_hidden, num_classes, 1)

    def forward(self, x):
        h = torch.zeros(self.num_hidden, x.shape[0])
        for t in range(self.seq_length):
            x_t = x[:, t].view(1, -1)
            h = torch.tanh(self.W_hx @ x_t + self.W_hh @ h + self.b_h)
        p = self.W_ph @ h + self.b_p
        return p.t()


class LSTM(nn.Module):
    def __init__(self, seq_length, input_dim, num_hidden, num_classes, batch_size):
        super().__init__()
        self.seq_length, self.num_hidden, self.batch_size = seq_length, num_hidden, batch_size
        n = num_hidden
        self.W_gx, self.W_gh, self.b_g = _uniform(n, n, input_dim), _uniform(n, n, n), _uniform(n, n, 1)
        self.W_ix, self.W_ih, self.b_i = _uniform(n, n, input_dim), _uniform(n, n, n), _uniform(n, n, 1)
        self.W_fx, self.W_fh, self.b_f = _uniform(n, n, input_dim), _uniform(n, n, n), _uniform(n, n, 1)
        self.W_ox, self.W_oh, self.b_o = _uniform(n, n, input_dim), _uniform(n, n, n), _uniform(n, n, 1)
        self.W_ph, self.b_p = _uniform(n, num_classes, n), _uniform(n, num_classes, 1)

    def forward(self, x):
        h = torch.zeros(self.num_hidden, x.shape[0])
        c = torch.zeros(self.num_hidden, x.shape[0])
        for t in range(self.seq_length):
            x_t = x[:, t].view(1, -1)
            g = torch.tanh(self.W_gx @ x_t + self.W_gh @ h + self.b_g)
            i = torch.sigmoid(self.W_ix @ x_t + self.W_ih @ h + self.b_i)
            f = torch.sigmoid(self.W_fx @ x_t + self.W_fh @ h + self.b_f)
            o = torch.sigmoid(self.W_ox @ x_t + self.W_oh @ h + self.b_o)
            c = g * i + c * f
            h = torch.tanh(c) * o
        p = self.W_ph @ h + self.b_p
        return p.t()


def make_optimizer(name, params, lr, momentum=0.0):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum)
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


class PalindromeBaseline:
    """The course's part-1 train.py loop, one call of `step()` per training step."""

    def __init__(self, model="lstm", input_length=10, batch=128, hidden=128, optimizer="rmsprop",
                 lr=1e-3, max_norm=10.0, seed=0):
        torch.manual_seed(seed)
        np.random.seed(seed)
        cls = {"rnn": VanillaRNN, "lstm": LSTM}[model]
        self.model = cls(input_length, 1, hidden, 10, batch)
        self.loader = data.DataLoader(PalindromeDataset(input_length + 1), batch, num_workers=0)
        self.batches = iter(self.loader)
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = make_optimizer(optimizer, self.model.parameters(), lr)
        self.max_norm = max_norm

    def step(self):
        batch_inputs, batch_targets = next(self.batches)
        self.optimizer.zero_grad()
        out = self.model(batch_inputs)
        loss = self.criterion(out, batch_targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.max_norm)
        self.optimizer.step()
        accuracy = (out.argmax(dim=1) == batch_targets).float().mean()
        return loss.item(), accuracy.item()


# --- text ------------------------------------------------------------------------------------
class TextDataset(data.Dataset):
    def __init__(self, text, seq_length):
        self._seq_length = seq_length
        self._data = text
        self._chars = sorted(set(self._data))
        self._data_size, self._vocab_size = len(self._data), len(self._chars)
        self._char_to_ix = {ch: i for i, ch in enumerate(self._chars)}
        self._ix_to_char = {i: ch for i, ch in enumerate(self._chars)}

    def __getitem__(self, item):
        offset = np.random.randint(0, len(self._data) - self._seq_length - 2)
        inputs = [self._char_to_ix[ch] for ch in self._data[offset:offset + self._seq_length]]
        targets = [self._char_to_ix[ch] for ch in self._data[offset + 1:offset + self._seq_length + 1]]
        return inputs, targets

    def __len__(self):
        return self._data_size

    @property
    def vocab_size(self):
        return self._vocab_size


class TextGenerationModel(nn.Module):
    def __init__(self, batch_size, seq_length, vocabulary_size, lstm_num_hidden=128,
                 lstm_num_layers=2):
        super().__init__()
        self.lstm = nn.LSTM(vocabulary_size, lstm_num_hidden, lstm_num_layers)
        self.linear = nn.Linear(lstm_num_hidden, vocabulary_size)

    def forward(self, x, h=None):
        out, h = self.lstm(x, h)
        return self.linear(out), h


class TextBaseline:
    """The course's part-3 train.py loop."""

    def __init__(self, text, batch=64, seq_length=30, hidden=128, layers=2, optimizer="rmsprop",
                 lr=2e-3, max_norm=5.0, seed=0):
        torch.manual_seed(seed)
        np.random.seed(seed)
        self.dataset = TextDataset(text, seq_length)
        self.vocab = self.dataset.vocab_size
        self.model = TextGenerationModel(batch, seq_length, self.vocab, hidden, layers)
        self.loader = data.DataLoader(self.dataset, batch, num_workers=0)
        self.batches = iter(self.loader)
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = make_optimizer(optimizer, self.model.parameters(), lr)
        self.max_norm = max_norm

    def next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:  # one pass of the sampler is an "epoch"; start another
            self.batches = iter(self.loader)
            return next(self.batches)

    def step(self):
        batch_inputs, batch_targets = self.next_batch()
        batch_inputs = torch.stack(batch_inputs)  # (T, B)
        batch_targets = torch.stack(batch_targets)
        x = torch.zeros(*batch_inputs.shape, self.vocab).scatter_(2, batch_inputs.unsqueeze(-1), 1)
        self.optimizer.zero_grad()
        out, _ = self.model(x)
        loss = self.criterion(out.view(-1, self.vocab), batch_targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.max_norm)
        self.optimizer.step()
        accuracy = (out.argmax(dim=2) == batch_targets).float().mean()
        return loss.item(), accuracy.item()


if __name__ == "__main__":
    import time

    torch.set_num_threads(1)
    for model in ("rnn", "lstm"):
        b = PalindromeBaseline(model)
        for _ in range(10):
            b.step()
        t = time.perf_counter()
        for _ in range(100):
            b.step()
        print(model, f"{100 / (time.perf_counter() - t):.1f} steps/s")
