"""Does Adam's order of float operations alone change a training trajectory? Eager training on
CUDA, same seed: capturable vs plain Adam, and foreach on vs off (the result is recorded in
results/gpu_check_h200.txt). Run: PYTHONPATH=src python3 benchmarks/adam_order_check.py"""

import torch
import torch.nn.functional as F

from rnnrepro.data.palindromes import palindrome_batch
from rnnrepro.models.lstm import LSTM

dev = torch.device("cuda")


def run(capturable, foreach=None, steps=500):
    torch.manual_seed(0)
    m = LSTM(128).to(dev)
    ps = list(m.parameters())
    opt = torch.optim.Adam(ps, lr=1e-3, capturable=capturable, foreach=foreach)
    g = torch.Generator(device=dev).manual_seed(0)
    out = []
    for _ in range(steps):
        x, y = palindrome_batch(128, 10, g, dev)
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ps, 10.0)
        opt.step()
        out.append(loss.item())
    return torch.tensor(out)


a, b, c = run(False), run(True), run(False, foreach=False)
for name, other in (("capturable vs plain", b), ("foreach off vs on:  ", c)):
    print(f"{name}: max|dloss|", (a - other).abs().max().item(),
          "first20", (a[:20] - other[:20]).abs().max().item())
print("argmax step", (a - b).abs().argmax().item(), "final losses", a[-1].item(), b[-1].item(), c[-1].item())
