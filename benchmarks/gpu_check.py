"""CUDA checks and timings for a lent GPU machine; prints a table, writes JSON.

    bash benchmarks/gpu.sh            # on a machine with CUDA; about 3 minutes on an H200 (estimated)
    GPU_CHECK_DEVICE=cpu GPU_CHECK_SCALE=0.02 python benchmarks/gpu_check.py   # a dry run

1. Correctness on CUDA against CPU float64, forward and gradients: the palindrome RNN/LSTM
   by every path (fused = cuDNN, loop = the reference equations, bptt = the hand-written
   recurrence), and the text model (torch's LSTM).
2. `impl graph` (the whole palindrome step captured in one CUDA graph) against the eager
   fused step, both through `fit` for the same spec and seed: the per-step loss curves must
   agree within tolerance for adam, rmsprop and sgd (the graph uses capturable optimizers);
   a NaN injected at a step must stop the graph run naming that step.
3. Real training jobs through the CLI on CUDA, steps/s from each job's summary: palindrome
   LSTM and RNN by impl fused (what auto picks on CUDA), graph, bptt and loop; the text
   model; and several palindrome jobs sharing the GPU (aggregate throughput).
Ends with a short table of the timings and the verdicts of the checks.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnrepro.data import palindrome_batch
from rnnrepro.models import LSTM, TextGenerationModel, VanillaRNN
from rnnrepro.spec import PalindromeSpec
import rnnrepro.train as T
from rnnrepro.train import Diverged, train_palindrome

OUT = Path(os.environ.get("OUT", "gpu-out"))
OUT.mkdir(parents=True, exist_ok=True)
CORPUS = next((p for p in (os.environ.get("RNNREPRO_CORPUS"), "shared/data/grimms_fairy_tales.txt",
                           "../shared/data/grimms_fairy_tales.txt", "data/grimms_fairy_tales.txt")
               if p and Path(p).exists()), None)
dev = torch.device(os.environ.get("GPU_CHECK_DEVICE", "cuda"))  # cpu: a dry run of the script
SCALE = float(os.environ.get("GPU_CHECK_SCALE", "1"))  # shrink step counts for a dry run
results = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
           "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"}
checks, speeds = {}, {}
tmp = Path(tempfile.mkdtemp(prefix="gpu-runs-"))
started = time.perf_counter()


def report(key, value):
    results[key] = value
    print(f"{key:62s} {value}", flush=True)


def check(name, ok, detail):
    checks[name] = ("PASS" if ok else "FAIL") + f" ({detail})"
    report(f"check: {name}", checks[name])


def max_diff(a, b):
    return (a.double().cpu() - b.double().cpu()).abs().max().item()


def steps(n):
    return max(int(n * SCALE), 20)


# 1. correctness ---------------------------------------------------------------------------------
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
paths = {"fused": lambda m, x: m(x, fast=True), "loop": lambda m, x: m(x, fast=False),
         "bptt": lambda m, x: m.forward_bptt(x)}
for cls in (VanillaRNN, LSTM):
    torch.manual_seed(0)
    cpu64 = cls(128).double()
    x, y = palindrome_batch(256, 10, torch.Generator().manual_seed(0))
    ref = cpu64(x, fast=False)
    F.cross_entropy(ref, y).backward()
    ref_grads = [p.grad.clone() for p in cpu64.parameters()]
    for name, run in paths.items():
        gpu = cls(128).to(dev)
        gpu.load_state_dict(cpu64.state_dict())
        out = run(gpu, x.to(dev))
        F.cross_entropy(out, y.to(dev)).backward()
        gdiff = max(max_diff(p.grad, g) for p, g in zip(gpu.parameters(), ref_grads))
        ldiff = max_diff(out, ref)
        report(f"{cls.__name__} {dev.type} {name} vs cpu64: logits / grads", f"{ldiff:.2e} / {gdiff:.2e}")
        check(f"{cls.__name__} {name} matches cpu64", ldiff < 1e-4 and gdiff < 1e-4,
              f"{ldiff:.1e}, {gdiff:.1e}")
torch.manual_seed(0)
text64 = TextGenerationModel(87).double()
idx, tgt = torch.randint(87, (64, 30)), torch.randint(87, (64, 30))
with torch.backends.mkldnn.flags(enabled=False):
    ref = text64(idx)[0]
F.cross_entropy(ref.flatten(0, 1), tgt.flatten()).backward()
ref_grads = [p.grad.clone() for p in text64.parameters()]
for name, run in (("fused", lambda m, i: m(i)[0]),):
    gpu = TextGenerationModel(87).to(dev)
    gpu.load_state_dict(text64.state_dict())
    out = run(gpu, idx.to(dev))
    F.cross_entropy(out.flatten(0, 1), tgt.to(dev).flatten()).backward()
    gdiff = max(max_diff(p.grad, g) for p, g in zip(gpu.parameters(), ref_grads))
    ldiff = max_diff(out, ref)
    report(f"TextGenerationModel {dev.type} {name} vs cpu64: logits / grads", f"{ldiff:.2e} / {gdiff:.2e}")
    check(f"text {name} matches cpu64", ldiff < 1e-4 and gdiff < 1e-4, f"{ldiff:.1e}, {gdiff:.1e}")
torch.backends.cudnn.allow_tf32 = True


# 2. impl graph against the eager step, through fit --------------------------------------------
def metrics(run_dir):
    rows = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    return [tuple(map(float, r.split(","))) for r in rows]


graph_note = "" if dev.type == "cuda" else " (graph falls back to auto off CUDA)"
for optimizer in ("adam", "rmsprop", "sgd"):
    n = steps(500)
    spec = dict(model="lstm", optimizer=optimizer, input_length=10, steps=n, eval_every=n,
                eval_size=1000, device=dev.type, lr=1e-3 if optimizer != "sgd" else 0.05)
    curves, walls = {}, {}
    # "fused" is the eager step as `fit` runs it; "fused-capturable" the same with the
    # capturable optimizer the graph needs. Adam's capturable and plain forms order their float
    # operations differently, and training amplifies that (adam_order_check.py): the graph is
    # checked against the eager step with the same optimizer form.
    plain_make_optimizer = T.make_optimizer
    for impl in ("fused", "fused-capturable", "graph"):
        if impl == "fused-capturable":
            T.make_optimizer = lambda spec, params, capturable=False: plain_make_optimizer(
                spec, params, capturable=dev.type == "cuda")  # CPU (dry run): no capturable
        t = time.perf_counter()
        try:
            train_palindrome(PalindromeSpec(impl=impl.split("-")[0], **spec),
                             tmp / f"cmp-{optimizer}-{impl}", stream=io.StringIO())
        finally:
            T.make_optimizer = plain_make_optimizer
        walls[impl] = time.perf_counter() - t
        curves[impl] = metrics(tmp / f"cmp-{optimizer}-{impl}")
    for ref in ("fused", "fused-capturable"):
        dl = max(abs(a[1] - b[1]) for a, b in zip(curves[ref], curves["graph"]))
        first = max(abs(a[1] - b[1]) for a, b in zip(curves[ref][:20], curves["graph"][:20]))
        report(f"graph vs eager {ref}, lstm {optimizer}, {n} steps: max |dloss| (first 20)",
               f"{dl:.2e} ({first:.2e}); wall {walls[ref]:.1f} s vs {walls['graph']:.1f} s"
               + graph_note)
    check(f"graph = eager loss curve ({optimizer}, same optimizer form)",
          len(curves["fused-capturable"]) == len(curves["graph"]) == n and first < 1e-4 and dl < 5e-2,
          f"max |dloss| {dl:.1e}, first 20 steps {first:.1e}")
try:
    train_palindrome(PalindromeSpec(model="lstm", impl="graph", steps=60, eval_size=100,
                                    device=dev.type), tmp / "nan", inject_nan_at=37,
                     stream=io.StringIO())
    check("graph run stops on NaN naming the step", False, "no error")
except Diverged as err:
    check("graph run stops on NaN naming the step", "at step 37" in str(err), str(err)[:70])


# 3. real jobs through the CLI ------------------------------------------------------------------
def job(args, out):
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rnnrepro", "train", *args, "--device", dev.type,
                    "--out", str(out)], check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    return wall, json.loads((Path(out) / "summary.json").read_text())


JOB_STEPS = {"fused": 2000, "graph": 4000, "bptt": 600, "loop": 600}
for model in ("lstm", "rnn"):
    for impl, n in JOB_STEPS.items():
        n = steps(n)
        wall, s = job(["palindrome", "--model", model, "--optimizer", "adam", "--input-length", "10",
                       "--steps", str(n), "--eval-every", str(min(1000, n)), "--impl", impl],
                      tmp / f"{model}-{impl}")
        speeds[(f"palindrome {model}", impl)] = s["steps_per_second"]
        report(f"palindrome {model} len10 {impl}: steps/s, job wall s ({n} steps)",
               f"{s['steps_per_second']:.0f}, {wall:.1f} (acc {s['eval_final']['accuracy']:.3f})")
if CORPUS:
    n = steps(2000)
    wall, s = job(["text", "--corpus", CORPUS, "--steps", str(n), "--sample-every", str(min(1000, n))],
                  tmp / "text")
    speeds[("text", "fused")] = s["steps_per_second"]
    report(f"text T=1 {n} steps (auto = fused on CUDA): steps/s, job wall s",
           f"{s['steps_per_second']:.0f}, {wall:.1f} (val acc {s['eval_final']['accuracy']:.3f})")
else:
    report("text", "skipped: no corpus (set RNNREPRO_CORPUS)")

for impl in ("fused", "graph"):
    for n_jobs in (1, 4):
        n = steps(1000)
        t = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-m", "rnnrepro", "train", "palindrome",
                                   "--model", "lstm", "--steps", str(n), "--seed", str(i),
                                   "--impl", impl, "--device", dev.type,
                                   "--out", str(tmp / f"share-{impl}{n_jobs}-{i}")],
                                  stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                 for i in range(n_jobs)]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - t
        speeds[(f"{n_jobs} lstm jobs at once (aggregate)", impl)] = n_jobs * n / wall
        report(f"{n_jobs} concurrent lstm {impl} jobs x {n} steps: wall s, aggregate steps/s, exits",
               f"{wall:.1f}, {n_jobs * n / wall:.0f}, {codes}")

# the table ----------------------------------------------------------------------------------------
impls = ["fused", "graph", "bptt", "loop"]
print(f"\n== steps/s on {results['device']} (torch {torch.__version__}), "
      f"{time.perf_counter() - started:.0f} s in all ==")
print(f"{'':38s}" + "".join(f"{i:>8s}" for i in impls))
for row in dict.fromkeys(k for k, _ in speeds):
    print(f"{row:38s}" + "".join(f"{speeds[(row, i)]:8.0f}" if (row, i) in speeds else f"{'':8s}"
                                 for i in impls))
print("== checks ==")
for name, verdict in checks.items():
    print(f"{name:46s} {verdict}")
results["checks"] = checks
results["speeds"] = {f"{k} | {i}": v for (k, i), v in speeds.items()}
(OUT / "gpu_results.json").write_text(json.dumps(results, indent=2))
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(0 if all(v.startswith("PASS") for v in checks.values()) else 1)
