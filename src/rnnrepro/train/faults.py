"""A testing aid: make chosen runs of a unit diverge at a chosen step (`rnnrepro train
--inject-nan-at`), to exercise what the loop does when a loss stops being finite, on every
device and code path (a CUDA graph included). It wraps the training step from outside: the
step itself has no branch for it.
"""

import torch


def nan_after(step_fn, task, start, at):
    """`step_fn`, except that at step `at[r]` (counted on from `start`, the unit's step when
    the loop begins) run r's loss is reported NaN and its weights become NaN, as a run's do
    when its loss overflows; the other runs of a stack are left as they are."""
    when = {}
    for r, s in at.items():
        if s:
            when.setdefault(s, []).append(r)
    count = start

    def step(gens):
        nonlocal count
        out = step_fn(gens)
        count += 1
        with torch.no_grad():
            for r in when.get(count, ()):
                for p in task.member_parameters(r):
                    p.fill_(float("nan"))
                out[r, 0] = float("nan")
        return out

    return step
