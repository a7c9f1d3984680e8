"""Several seeds of one palindrome setting trained as one batched step: a measured prototype.

Issue 6 lists it as an idea worth measuring: S runs that differ only in their seed share
every shape, so their recurrences can run as one batched matmul per step (`torch.baddbmm`
over a leading run dimension, which the scans in src/rnnrepro/bptt.py accept) and their
pointwise work, clipping and optimizer step as one op each over all S runs. Each run keeps
its own data stream (its own generator, as `fit` seeds it), its own loss (the batched loss
is the sum of the runs' mean losses, so each run's gradient is its own), its own gradient
clipping (per-run norm, torch's formula) and its own optimizer state (RMSprop, Adam and SGD
are elementwise, so one optimizer over the stacked parameters updates each run as its own
would).

    PYTHONPATH=src python benchmarks/seed_batching.py [--seeds 2 3 5] [--threads 1 2] [--csv F]

It first checks the batched runs against S separate runs of the project's own step (impl
bptt) after 50 steps: with SGD, where the difference stays at rounding level (~3e-8), and
with the spec's optimizer, where training grows rounding differences (with RMSprop to
1e-4 to 6e-3 by step 50, seed by seed, as much as two single-run implementations differ:
impl loop against impl bptt, 2e-5 to 5e-3 for the same seeds). Then it times, interleaved
as `rnnrepro bench` does, the course-style baseline, the project's step (impl auto, one run)
and the batched step for each S, and prints steps/s per run (a batched step advances S
runs). Not used by the pipeline.
"""

import argparse
import statistics
import warnings

import torch
import torch.nn.functional as F

from rnnrepro import bench, bptt, train
from rnnrepro.data import palindrome_batch
from rnnrepro.spec import PalindromeSpec

# The stacked parameters are strided views of the (S, P) buffer; torch notes that such a
# layout is not the one it would give a gradient. Their gradients are views of that buffer's
# gradient, laid out alike: nothing is copied.
warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout")


class _StackedLayer(torch.autograd.Function):
    """One recurrent layer for S runs at once, scalar inputs (d = 1), zero initial state.
    x (T, S, B, 1); W_x (S, G, 1), b (S, G), W_h (S, G, H). Returns h_T (S, B, H).
    bptt._Layer for a stack: the same tanh-block scaling around the same scans, with the
    input terms of a scalar input as one broadcast product (bptt's take one run only)."""

    @staticmethod
    def forward(ctx, x, W_x, b, W_h, gates):
        s = bptt.tanh_scale(gates, W_h.shape[-1], W_h)
        W = W_h * s.unsqueeze(-1)
        xz = torch.addcmul((b * s)[:, None], x, (W_x.squeeze(-1) * s)[:, None])
        if gates == 4:
            hs, *saved = bptt._lstm_scan(xz, W, save=True)
        else:
            hs, saved = bptt._rnn_scan(xz, W), []
        ctx.save_for_backward(x, s, W, hs, *saved)
        ctx.gates = gates
        return hs[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dH):
        x, s, W, hs, *saved = ctx.saved_tensors
        if ctx.gates == 4:
            dz, dW = bptt._lstm_bptt(dH.contiguous(), W, *saved, hs, True)
        else:
            dz, dW = bptt._rnn_bptt(dH.contiguous(), W, hs, True)
        dz = dz.transpose(0, 1).flatten(1, 2)  # (S, T·B, G), a copy
        dW_x = torch.bmm(x.transpose(0, 1).reshape(dz.shape[0], 1, -1), dz).mul_(s).mT
        db = dz.sum(1).mul_(s)
        return None, dW_x, db, dW * s.unsqueeze(-1), None


class SeedBatch:
    """S runs of `spec` (seeds `seeds`), initialised and fed exactly as `fit` would each."""

    def __init__(self, spec, seeds):
        specs = [PalindromeSpec(**{**spec.to_dict(), "seed": sd, "impl": "bptt"}) for sd in seeds]
        runs = [train.prepare(sp, lambda d, sp=sp: train.PalindromeTask(sp, d)) for sp in specs]
        self.spec, self.specs, self.S, self.gates = spec, specs, len(seeds), runs[0].model.gates
        self.gens = [r.gen for r in runs]
        # The runs' parameters stacked (S, ...) as views of one (S, P) buffer, row r run r's,
        # and their gradients of another (train.flat_parameters with a run dimension): the
        # clipping and the optimizer see one tensor.
        self.p = {name: torch.nn.Parameter(torch.stack([r.model.get_parameter(name).detach()
                                                        for r in runs]))
                  for name, _ in runs[0].model.named_parameters()}
        assert list(self.p) == ["W_x", "W_h", "b", "W_p", "b_p"], list(self.p)
        self.flat = train.flat_parameters(list(self.p.values()), lead=1)
        self.opt = train.make_optimizer(spec, [self.flat])

    def step(self):
        xs, ys = zip(*(palindrome_batch(self.spec.batch, self.spec.input_length, g)
                       for g in self.gens))
        x = torch.stack([x.t() for x in xs], 1).unsqueeze(-1).float()  # (T, S, B, 1)
        y = torch.stack(ys)  # (S, B)
        p = self.p
        h = _StackedLayer.apply(x, p["W_x"], p["b"], p["W_h"], self.gates)
        logits = torch.baddbmm(p["b_p"].unsqueeze(1), h, p["W_p"].mT)  # (S, B, C)
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        losses = losses.view(self.S, -1).mean(1)
        train.zero_grads([self.flat])
        losses.sum().backward()
        norms = torch.linalg.vector_norm(self.flat.grad, dim=1)  # each run's own clipping
        self.flat.grad.mul_((self.spec.max_norm / (norms + 1e-6)).clamp_(max=1.0).unsqueeze(1))
        train.optimizer_step(self.opt)
        acc = (logits.argmax(-1) == y).float().mean(1)
        return torch.stack((losses.detach(), acc, norms), 1)


def check(spec, seeds, steps=50):
    """Max |difference| of the batched runs' parameters from separate runs after `steps`."""
    batch = SeedBatch(spec, seeds)
    for _ in range(steps):
        batch.step()
    worst = 0.0
    for r, one in enumerate(batch.specs):
        run = train.prepare(one, lambda d: train.PalindromeTask(one, d))
        step = train.make_step(run.task, run.opt, run.params, one)
        for _ in range(steps):
            step(run.gen)
        ref = torch.cat([p.detach().flatten() for p in run.model.parameters()])
        worst = max(worst, (batch.flat[r].detach() - ref).abs().max().item())
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 5])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", default=["rnn", "lstm"])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seconds", type=float, default=0.4)
    ap.add_argument("--csv")
    args = ap.parse_args(argv)
    base = bench.load_baseline()
    rows = []
    for threads in args.threads:
        for model in args.models:
            spec = PalindromeSpec(model=model, input_length=10, batch=128, device="cpu",
                                  threads=threads)
            sgd = PalindromeSpec(**{**spec.to_dict(), "optimizer": "sgd", "lr": 0.05,
                                    "momentum": 0.0})
            diffs = [check(sp, list(range(max(args.seeds)))) for sp in (sgd, spec)]
            course = base.PalindromeBaseline(model, spec.input_length, spec.batch, spec.hidden,
                                             spec.optimizer, spec.lr, spec.max_norm, spec.seed)
            step, impl = bench.project_step(spec, lambda d: train.PalindromeTask(spec, d))
            impls = [("course", 1, course.step), (f"project ({impl})", 1, step)]
            impls += [(f"{S} seeds batched", S, SeedBatch(spec, list(range(S))).step)
                      for S in args.seeds]
            torch.set_num_threads(threads)
            rates, _ = bench.time_interleaved([(n, "", f) for n, _, f in impls],
                                              args.rounds, args.seconds, warmup=0.5)
            med = {n: statistics.median(r) for n, r in rates.items()}
            for name, S, _ in impls:
                per_run = med[name] * S
                rows.append({"model": model, "threads": threads, "implementation": name,
                             "runs_per_step": S, "steps_per_s": med[name],
                             "run_steps_per_s": per_run,
                             "ratio_to_course": per_run / med["course"],
                             "ratio_to_project": per_run / med[impls[1][0]],
                             "max_param_diff_sgd": diffs[0] if S > 1 else None,
                             f"max_param_diff_{spec.optimizer}": diffs[1] if S > 1 else None})
                print(f"{model:5s} {threads} thr  {name:18s} {med[name]:7.1f} steps/s "
                      f"{per_run:7.1f} run-steps/s  {per_run / med['course']:5.2f}x course  "
                      f"{per_run / med[impls[1][0]]:5.2f}x project", flush=True)
            print(f"{model:5s} {threads} thr  batched vs separate runs, max |param diff| after "
                  f"50 steps: {diffs[0]:.1e} with SGD, {diffs[1]:.1e} with {spec.optimizer}",
                  flush=True)
    if args.csv:
        from rnnrepro.io import write_csv

        write_csv(args.csv, rows, list(rows[0]))
    return rows


if __name__ == "__main__":
    main()
