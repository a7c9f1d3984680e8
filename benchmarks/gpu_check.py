"""CUDA checks and timings for a lent GPU machine; prints a table, writes JSON.

    bash benchmarks/gpu.sh            # on a machine with CUDA; ~4 minutes on an H200

1. Correctness: the fused (cuDNN) and reference paths on CUDA against CPU float64, for the
   palindrome RNN/LSTM and the text model, forward and gradients.
2. Real training jobs through the CLI on CUDA: full-length palindrome runs (10k steps) and
   a text run, their steps/s against the same jobs on `impl loop` (eager reference loop).
3. Exploratory: the palindrome training step captured in one CUDA graph, and several
   training processes sharing the GPU (aggregate throughput).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnrepro.data import palindrome_batch
from rnnrepro.models import LSTM, TextGenerationModel, VanillaRNN

OUT = Path(os.environ.get("OUT", "gpu-out"))
OUT.mkdir(parents=True, exist_ok=True)
CORPUS = os.environ.get("RNNREPRO_CORPUS", "shared/data/grimms_fairy_tales.txt")
dev = torch.device(os.environ.get("GPU_CHECK_DEVICE", "cuda"))  # cpu: a dry run of the script
SCALE = float(os.environ.get("GPU_CHECK_SCALE", "1"))  # shrink step counts for a dry run
results = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
           "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"}


def report(key, value):
    results[key] = value
    print(f"{key:58s} {value}", flush=True)


def max_diff(a, b):
    return (a.double().cpu() - b.double().cpu()).abs().max().item()


# 1. correctness ---------------------------------------------------------------------------
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
for cls in (VanillaRNN, LSTM):
    torch.manual_seed(0)
    cpu64 = cls(128).double()
    x, y = palindrome_batch(256, 10, torch.Generator().manual_seed(0))
    ref = cpu64(x, fast=False)
    F.cross_entropy(ref, y).backward()
    ref_grads = [p.grad.clone() for p in cpu64.parameters()]
    for fast in (True, False):
        gpu = cls(128).to(dev)
        gpu.load_state_dict(cpu64.state_dict())
        out = gpu(x.to(dev), fast=fast)
        F.cross_entropy(out, y.to(dev)).backward()
        gdiff = max(max_diff(p.grad, g) for p, g in zip(gpu.parameters(), ref_grads))
        report(f"{cls.__name__} cuda {'fused' if fast else 'loop'} vs cpu64: logits / grads",
               f"{max_diff(out, ref):.2e} / {gdiff:.2e}")
torch.manual_seed(0)
text64 = TextGenerationModel(87).double()
idx = torch.randint(87, (64, 30))
gpu = TextGenerationModel(87).to(dev)
gpu.load_state_dict(text64.state_dict())
report("TextGenerationModel cuda vs cpu64: logits",
       f"{max_diff(gpu(idx.to(dev))[0], text64(idx)[0]):.2e}")
torch.backends.cudnn.allow_tf32 = True


# 2. real jobs through the CLI -----------------------------------------------------------
def job(args, out):
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnrepro", "train", *args, "--device", dev.type,
                    "--out", str(out)], check=True, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    s = json.loads((Path(out) / "summary.json").read_text())
    return wall, s


tmp = Path("/tmp/gpu-runs")
for model in ("lstm", "rnn"):
    for impl in ("fused", "loop"):
        steps = int((10_000 if impl == "fused" else 3000) * SCALE)
        wall, s = job(["palindrome", "--model", model, "--optimizer", "adam", "--input-length", "10",
                       "--steps", str(steps), "--impl", impl], tmp / f"{model}-{impl}")
        report(f"palindrome {model} len10 {impl}: steps/s, job wall s ({steps} steps)",
               f"{s['steps_per_second']:.0f}, {wall:.1f} (acc {s['eval_final']['accuracy']:.3f})")
wall, s = job(["text", "--corpus", CORPUS, "--steps", str(int(3000 * SCALE)),
            "--sample-every", "1000"], tmp / "text")
report("text T=1 3000 steps: steps/s, job wall s",
       f"{s['steps_per_second']:.0f}, {wall:.1f} (val acc {s['eval_final']['accuracy']:.3f})")

# 3a. the palindrome step in one CUDA graph ----------------------------------------------
try:
    torch.manual_seed(0)
    model = LSTM(128).to(dev)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, capturable=True)

    def step():
        x, y = palindrome_batch(128, 10, None, dev)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0, foreach=True)
        opt.step()
        return loss.detach()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(5):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = step()
    for n_steps, label in ((200, "warm"), (3000, "timed")):
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n_steps):
            graph.replay()
        torch.cuda.synchronize()
        rate = n_steps / (time.perf_counter() - t)
    report("palindrome lstm len10, whole step in a CUDA graph: steps/s", f"{rate:.0f}")
    t = time.perf_counter()
    for _ in range(1000):
        step()
    torch.cuda.synchronize()
    report("  the same step eager (no metrics, no eval): steps/s",
           f"{1000 / (time.perf_counter() - t):.0f}")
    report("  loss after graph replays", f"{static_loss.item():.4f}")
except Exception as err:  # exploratory: report and go on
    report("cuda graph step", f"failed: {type(err).__name__}: {err}")

# 3b. several jobs sharing the GPU ------------------------------------------------------
for n in (1, 4):
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "rnnrepro", "train", "palindrome",
                               "--model", "lstm", "--steps", str(int(3000 * SCALE)),
                               "--seed", str(i), "--device", dev.type, "--out", str(tmp / f"share{n}-{i}")],
                              stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
             for i in range(n)]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t
    report(f"{n} concurrent lstm jobs x {int(3000 * SCALE)} steps: wall s, aggregate steps/s, exits",
           f"{wall:.1f}, {n * int(3000 * SCALE) / wall:.0f}, {codes}")

(OUT / "gpu_results.json").write_text(json.dumps(results, indent=2))
