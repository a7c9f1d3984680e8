"""The phased-LSTM paper's frequency-discrimination task (Neil, Pfeiffer and Liu 2016, §3.1;
SPEC §7), generated as whole batches of tensors on the device.

A sequence samples sin(2πt/P − shift) inside a window of the first 125 ms: the period P is
drawn log-uniformly in [1, 100] ms, except that half of every batch has P drawn log-uniformly
in [5, 6] ms; the label is 1 exactly where 5 ≤ P ≤ 6. The window lasts U(15, 125) ms and
starts at U(0, 125 − duration); shift ~ U(0, duration). The sampling is regular (every 1 ms:
15 to 125 samples), fine (every 0.1 ms: 150 to 1,250), or asynchronous (n ~ U{15..125}
sorted uniform random times in the window).

A batch is padded to its sampling's longest sequence: `mask` marks the real samples, and a
padded step repeats the sequence's last time and value, so that a model which holds its state
on padding reads each sequence at its own length.
"""

import math

import torch

HORIZON = 125.0  # ms: every window lies in [0, HORIZON]
DURATION = (15.0, 125.0)  # ms
PERIOD = (1.0, 100.0)  # ms, log-uniform
TARGET = (5.0, 6.0)  # ms: the periods labelled 1
SAMPLINGS = {"regular": 1.0, "fine": 0.1, "async": None}  # ms between samples (None: random)
ASYNC_SAMPLES = (15, 125)


def _log_uniform(lo, hi, n, generator, device):
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def frequency_batch(batch, sampling="regular", generator=None, device=None):
    """(values (B, L, 1), times (B, L) in ms, mask (B, L), labels (B,)) for `batch` sequences,
    L the longest sequence `sampling` can give; float32 values and times, long labels."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    kw = {"generator": generator, "device": device, "dtype": torch.float64}
    period = _log_uniform(*PERIOD, batch, generator, device)
    forced = torch.randperm(batch, generator=generator, device=device)[: batch // 2]
    period[forced] = _log_uniform(*TARGET, len(forced), generator, device)
    duration = DURATION[0] + torch.rand(batch, **kw) * (DURATION[1] - DURATION[0])
    start = torch.rand(batch, **kw) * (HORIZON - duration)
    shift = torch.rand(batch, **kw) * duration
    step = SAMPLINGS[sampling]
    if step is None:
        longest = ASYNC_SAMPLES[1]
        n = torch.randint(ASYNC_SAMPLES[0], ASYNC_SAMPLES[1] + 1, (batch,), generator=generator,
                          device=device)
        # a row's first n uniform draws, sorted, are its times (the rest, set to the window's
        # end before sorting, stay behind them)
        index = torch.arange(longest, device=device)
        mask = index < n.unsqueeze(1)
        offsets = torch.rand(batch, longest, **kw)
        offsets = torch.where(mask, offsets, torch.ones_like(offsets)).sort(dim=1).values
    else:
        longest = int(round(DURATION[1] / step))
        n = torch.floor(duration / step).long().clamp(min=1)
        index = torch.arange(longest, device=device)
        mask = index < n.unsqueeze(1)
        offsets = index * step / duration.unsqueeze(1)
    last = (n - 1).unsqueeze(1)
    offsets = torch.where(mask, offsets, offsets.gather(1, last))  # padding repeats the last
    times = start.unsqueeze(1) + offsets * duration.unsqueeze(1)
    values = torch.sin(2 * math.pi * times / period.unsqueeze(1) - shift.unsqueeze(1))
    labels = ((period >= TARGET[0]) & (period <= TARGET[1])).long()
    return values.float().unsqueeze(-1), times.float(), mask, labels
