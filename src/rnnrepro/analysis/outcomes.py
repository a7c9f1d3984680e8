"""What became of a palindrome run.

A run's outcome is read from its held-out accuracy curve against the convergence
threshold: it never reached the threshold, reached it and ended at or above it (kept: it
may have dipped on the way), or reached it and ended below it (lost). A lost run fell below
the threshold after its last evaluation at or above it and did not come back before the
end; the evaluation where it was first seen below is where it was lost. Around that step
its gradient norm (before clipping) and its health (models.health: the share of saturated
hidden units and the spectral norm of W_h) tell what happened; the gradient norm while it
held the task and after it lost it, and its health at those two times, bear on why it did
not come back.

How far a handful of seeds can be trusted is statistics.py's.
"""

import math

import numpy as np

from rnnrepro.analysis.statistics import wilson

# A lost run that ends within this much held-out accuracy of the criterion dipped below it
# late; one that ends further below collapsed. The report tells the two apart.
NEAR_MISS = 0.05
# the palindrome task's classes (data.palindromes draws digits 0-9): a uniform guess scores
# CHANCE_ACCURACY and has a held-out loss of CHANCE_LOSS nats
DIGITS = 10
CHANCE_ACCURACY, CHANCE_LOSS = 1 / DIGITS, math.log(DIGITS)

# the columns `classify` adds to a run's row in runs.csv
COLUMNS = ("outcome", "reached_step", "falls", "last_held_step", "lost_step", "held_grad_norm",
           "held_peak_grad_norm", "peak_grad_norm", "after_grad_norm", "saturation_held",
           "saturation_final", "w_h_norm_held", "w_h_norm_final")


def classify(evals, metrics, threshold):
    """A run's outcome from its eval.csv and metrics.csv rows (DataFrames sorted by step):
    a dict of COLUMNS (None where a column does not apply to the outcome).

    `falls`: how often a run that reached the criterion fell below it again, at one evaluation
    after another at or above it (a kept run came back from each; a lost run's last fall is its
    loss). For a lost run: `peak_grad_norm` is the largest gradient norm (before clipping) between
    the last evaluation at the criterion and the first below it; `held_peak_grad_norm` the
    same maximum taken over each evaluation interval while the criterion held, as a median
    over those intervals (what a window of that length typically peaks at while the task is
    held: a fair yardstick for the peak); `held_grad_norm` and `after_grad_norm` the median
    norm while held and after the loss; the health columns at the last evaluation at the
    criterion and at the end."""
    row = dict.fromkeys(COLUMNS)
    acc, steps = evals["accuracy"].to_numpy(), evals["step"].to_numpy()
    held = np.flatnonzero(acc >= threshold)
    if not len(held):
        row["outcome"] = "never"
        return row
    row["reached_step"] = int(steps[held[0]])
    # how often it fell below the criterion once it had reached it (a lost run's last fall too)
    above = acc[held[0]:] >= threshold
    row["falls"] = int(np.sum(above[:-1] & ~above[1:]))
    last = held[-1]
    if last == len(acc) - 1:
        row["outcome"] = "kept"
        return row
    lost = last + 1
    grads = metrics.set_index("step")["grad_norm"]

    def window(a, b):  # the logged steps in (a, b]
        return grads[(grads.index > a) & (grads.index <= b)]

    # while held: the evaluation intervals from the first at the criterion to the last; for a
    # run that held it at one evaluation only, the interval that led up to it
    first = held[0] if last > held[0] else max(held[0] - 1, 0)
    while_held = window(steps[first], steps[last])
    window_peaks = [w.max() for i in range(first, last) if len(w := window(steps[i], steps[i + 1]))]
    around = window(steps[last], steps[lost])
    after = grads[grads.index > steps[lost]]
    final = evals.iloc[-1]
    row.update({
        "outcome": "lost", "last_held_step": int(steps[last]), "lost_step": int(steps[lost]),
        "held_grad_norm": float(while_held.median()) if len(while_held) else None,
        "held_peak_grad_norm": float(np.median(window_peaks)) if window_peaks else None,
        "peak_grad_norm": float(around.max()) if len(around) else None,
        "after_grad_norm": float(after.median()) if len(after) else None,
        "saturation_held": float(evals["saturation"].iloc[last]),
        "saturation_final": float(final["saturation"]),
        "w_h_norm_held": float(evals["w_h_norm"].iloc[last]),
        "w_h_norm_final": float(final["w_h_norm"]),
    })
    return row


def crossing_step(e, column, target):
    """The step at which a held-out curve (rows of one run) first meets `target`: accuracy at
    or above it, loss at or below it. Interpolated linearly between the evaluation before and
    the first one that met it, so that runs meeting it between the same two evaluations are
    still told apart; None if it never does."""
    e = e.sort_values("step")
    sign = 1 if column == "accuracy" else -1
    v, x, goal = sign * e[column].to_numpy(), e["step"].to_numpy(), sign * target
    hit = np.flatnonzero(v >= goal)
    if not len(hit):
        return None
    i = hit[0]
    if i == 0:
        return float(x[0])
    return float(x[i - 1] + (goal - v[i - 1]) / (v[i] - v[i - 1]) * (x[i] - x[i - 1]))


def tally(outcomes):
    """Seeds, and how many of them converged (kept), lost it or never reached it, with the
    Wilson interval of the share converged: for the `outcome` column of some runs."""
    counts = outcomes.value_counts()
    kept, lost = int(counts.get("kept", 0)), int(counts.get("lost", 0))
    return {"seeds": len(outcomes), "converged": kept, "lost": lost,
            "never": len(outcomes) - kept - lost, "interval": wilson(kept, len(outcomes))}
