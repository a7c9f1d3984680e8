"""What Section 2 of the report reads: the memory studies, the extrapolation, the frequency task
beside the phased-LSTM paper's own table, and the timing study, each from the tables."""

import math
from dataclasses import dataclass

import numpy as np

from rnnrepro.analysis.outcomes import crossing_step
from rnnrepro.analysis.phased import VARIANTS
from rnnrepro.config import roles as R

# Neil, Pfeiffer and Liu (2016), §3.1, as the authors' code prints it: held-out accuracy (%)
# after 70 epochs, 110 units, mean of 5 seeds, inputs sampled every 1 ms, every 0.1 ms and at
# random times. Printed beside the measured table; no verdict reads it.
PAPER = {
    "rows": [("phased LSTM", (99.26, 99.61, 97.89)), ("batch-norm LSTM", (98.95, 62.38, 74.30)),
             ("LSTM", (89.34, 51.72, 69.02))],
    "samplings": ("regular", "fine", "async"), "units": 110, "epochs": 70, "seeds": 5, "batch": 32,
}
SAMPLING_WORDS = {"regular": "every 1 ms", "fine": "every 0.1 ms", "async": "random times"}
MODEL_WORDS = {"lstm": "LSTM (time as input)", "phased": "phased LSTM"}


def _of_numbers(statistic, values):
    """`statistic` of the values that are numbers (None and NaN left out), or None."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(statistic(values)) if values else None


def _mean(values):
    return _of_numbers(np.mean, values)


def _median(values):
    return _of_numbers(np.median, values)


@dataclass
class PhasedSection:
    """Section 2's tables; a part is None where its studies did not run."""

    memory: list  # per memory study and input length: seeds, converged, steps, accuracy, gate
    memory_setup: dict  # the memory runs' steps, units, batch, learning rate
    extrapolation: dict  # train_length, lengths, rows (variant, accuracy per length)
    frequency: dict  # rows (model, accuracy per sampling), samplings, setup
    timing: list  # per set of learned parameters: accuracy, steps to target, timing
    paper: dict  # PAPER
    target: float  # report.frequency_target
    any_runs: bool


def memory_rows(t):
    rows = []
    for study, name in VARIANTS.items():
        runs, evals = t.study(study), t.study(study, "evals")
        if runs is None:
            continue
        for length, g in runs.groupby("input_length"):
            final = (evals[(evals.input_length == length)].sort_values("step").groupby("run_id").tail(1)
                     if evals is not None else None)
            gate = study != R.LSTM_MEMORY and final is not None and "open_share" in final
            rows.append({
                "study": study, "variant": name, "length": int(length), "seeds": len(g),
                "converged": int((g["outcome"] == "kept").sum()),
                "reached_step": _median(g["reached_step"]),
                "accuracy": _mean(g["eval_final_accuracy"]),
                "open_share": _mean(final["open_share"]) if gate else None,
                "first_open": _mean(final["first_open"]) if gate else None,
                "hidden": int(g["hidden"].iloc[0]),
            })
    return rows


def memory_setup(t):
    """The memory runs' settings (the first memory study's first run), and each phased
    study's periods (log τ range) and learned timing parameters."""
    present = {s: r for s in VARIANTS if (r := t.study(s)) is not None}
    if not present:
        return None
    r = next(iter(present.values())).iloc[0]
    periods = {s: {"low": float(g["tau_low"].iloc[0]), "high": float(g["tau_high"].iloc[0]),
                   "r_on": float(g["r_on"].iloc[0]), "learn": g["learn"].iloc[0]}
               for s, g in present.items() if s != R.LSTM_MEMORY}
    return {"steps": int(r["steps"]), "hidden": int(r["hidden"]), "batch": int(r["batch"]),
            "lr": float(r["lr"]), "optimizer": r["optimizer"], "periods": periods}


def extrapolation(t):
    ext = t.table("extrapolation")
    if ext is None or ext.empty:
        return None
    lengths = sorted(int(x) for x in ext["length"].unique())
    rows = []
    for study, g in ext.groupby("study", sort=False):
        means = g.groupby("length")["accuracy"].mean()
        rows.append({"variant": VARIANTS.get(study, study), "seeds": g["seed"].nunique(),
                     "accuracy": [float(means[x]) for x in lengths]})
    return {"train_length": int(ext["train_length"].iloc[0]), "lengths": lengths, "rows": rows,
            "size": t.extrapolation_size}


def frequency(t):
    runs = t.study(R.FREQUENCY_STUDY)
    if runs is None:
        return None
    samplings = [s for s in PAPER["samplings"] if s in set(runs["sampling"])]
    rows = []
    for model in ("lstm", "phased"):
        g = runs[runs["model"] == model]
        if g.empty:
            continue
        rows.append({"model": MODEL_WORDS[model],
                     "accuracy": {s: _mean(100 * g[g.sampling == s]["eval_final_accuracy"])
                                  for s in samplings}})
    r = runs.iloc[0]
    phased = runs[runs["model"] == "phased"]
    timing = phased.iloc[0] if len(phased) else None
    return {"rows": rows, "samplings": samplings, "words": SAMPLING_WORDS,
            "optimizer": r["optimizer"], "learn": None if timing is None else timing["learn"],
            "tau": None if timing is None else (float(timing["tau_low"]), float(timing["tau_high"])),
            "r_on": None if timing is None else float(timing["r_on"]),
            "hidden": int(r["hidden"]), "steps": int(r["steps"]), "batch": int(r["batch"]),
            "lr": float(r["lr"]), "seeds": int(runs.groupby(["model", "sampling"])["seed"].nunique().min()),
            "eval_size": int(r["eval_size"])}


def timing(t, target):
    runs, evals = t.study(R.LEARN_STUDY), t.study(R.LEARN_STUDY, "evals")
    if runs is None or evals is None:
        return None
    # one table row per set of learned parameters: the study's sampling is its only one
    sampling = runs["sampling"].iloc[0]
    rows = []
    for learn, g in sorted(runs.groupby("learn"), key=lambda kv: (kv[0] != "none", len(kv[0]))):
        e = evals[evals["learn"] == learn]
        steps = [crossing_step(run, "accuracy", target) for _, run in e.groupby("run_id")]
        final = e.sort_values("step").groupby("run_id").tail(1)
        rows.append({
            "learn": learn, "seeds": len(g), "accuracy": _mean(g["eval_final_accuracy"]),
            "reached": sum(s is not None for s in steps), "steps": _median(steps),
            "tau_initial": _mean(g["tau_initial"]), "tau_final": _mean(g["tau_final"]),
            "r_on_initial": _mean(g["r_on_initial"]), "r_on_final": _mean(g["r_on_final"]),
            "open_share": _mean(final["open_share"]), "sampling": SAMPLING_WORDS.get(sampling, sampling),
        })
    return rows


def phased_context(t, target):
    memory = memory_rows(t)
    parts = {"memory": memory, "memory_setup": memory_setup(t), "extrapolation": extrapolation(t),
             "frequency": frequency(t), "timing": timing(t, target)}
    return PhasedSection(**parts, paper=PAPER, target=target,
                         any_runs=any(v for v in parts.values()))
