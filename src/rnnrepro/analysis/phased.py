"""Section 2's claims (12 to 15): what the original says of the phased LSTM, judged on the
memory studies (the LSTM and the phased LSTM on palindromes), the length extrapolation and
the frequency task. Each check returns (per_seed, measured) as scorecard.py's checks do: a
claim holds for a seed when its rule below holds for that seed's runs, and the verdict is the
share of seeds (statistics.share_verdict).

Two held-out accuracies of one seed are told apart only beyond the 95 % interval of their
difference over the held-out sets' sampling (`beyond_noise`); with several seeds the share of
seeds decides as for claims 1 to 11.
"""

import math

from rnnrepro.analysis.outcomes import crossing_step
from rnnrepro.analysis.statistics import Z95
from rnnrepro.config import roles as R
from rnnrepro.config.kinds import TIMING, learn_word

# the memory studies' models, as the report names them
VARIANTS = {R.LSTM_MEMORY: "LSTM", R.PHASED_SHORT: "phased, short periods",
            R.PHASED_LONG: "phased, long periods"}
PHASED_VARIANTS = (R.PHASED_SHORT, R.PHASED_LONG)
UNRESOLVED = {"verdict": "unresolved"}
VARIES = "{} has several runs per {}: the claim's rule compares one run per setting"
MODEL_NAMES = {"lstm": "LSTM", "phased": "phased LSTM"}
LEARNED = {"none": "nothing learned", "tau, s": "tau and s learned",
           "tau, s, r_on": "tau, s and r_on learned"}
SAMPLING_NAMES = {"regular": "regular", "async": "asynchronous", "fine": "every 0.1 ms"}


def beyond_noise(a, b, n_a, n_b):
    """Whether held-out accuracy a exceeds b by more than the 95 % interval of the difference
    of two proportions scored on n_a and n_b held-out sequences."""
    half = Z95 * math.sqrt(a * (1 - a) / n_a + b * (1 - b) / n_b)
    return a - b > half


def longest_converged(runs):
    """Per seed, the longest input length whose run kept the criterion to the end (0: none)."""
    kept = runs[runs["outcome"] == "kept"]
    return {s: int(kept[kept["seed"] == s]["input_length"].max()) if (kept["seed"] == s).any() else 0
            for s in runs["seed"].unique()}


def _length_text(length):
    return str(length) if length else "none"


def memory_claim(t):
    """Claim 12: per seed, the best phased variant keeps the criterion to the end at a longer
    input length than the LSTM; or at the same longest length, its models trained at the
    extrapolation's first length keep more accuracy at its second (beyond the held-out noise).
    A seed where no model kept the criterion at any length, or a tie without the
    extrapolation, is not judged."""
    runs = {s: t.study(s) for s in VARIANTS}
    if runs[R.LSTM_MEMORY] is None or all(runs[s] is None for s in PHASED_VARIANTS):
        return {}, "no runs"
    longest = {s: longest_converged(r) for s, r in runs.items() if r is not None}
    ext = whole = t.table("extrapolation")
    far = None
    if ext is not None and ext["length"].nunique() > 1:
        far = ext["length"].unique()[1]  # the second of report.extrapolation_lengths
        ext = ext[ext["length"] == far].set_index(["study", "seed"])
        if not ext.index.is_unique:
            return {}, VARIES.format("extrapolation table", "study and seed"), UNRESOLVED
    per_seed = {}
    for seed, lstm_len in longest[R.LSTM_MEMORY].items():
        phased = {s: longest[s].get(seed) for s in PHASED_VARIANTS if s in longest}
        phased = {s: v for s, v in phased.items() if v is not None}
        if not phased:
            continue
        best = max(phased.values())
        if best == lstm_len == 0:
            continue  # no model learned the task at any length: nothing to judge
        held = best > lstm_len
        if best == lstm_len and (far is None or (R.LSTM_MEMORY, seed) not in ext.index):
            continue  # a tie that the extrapolation would break, without it: not judged
        if best == lstm_len:
            lstm_acc = ext.loc[(R.LSTM_MEMORY, seed), "accuracy"]
            size = t.extrapolation_size
            held = any(beyond_noise(ext.loc[(s, seed), "accuracy"], lstm_acc, size, size)
                       for s in phased if (s, seed) in ext.index)
        per_seed[seed] = bool(held)
    parts = ["longest input length that kept the criterion to the end: " + ", ".join(
        f"{VARIANTS[s]} {'/'.join(_length_text(v) for _, v in sorted(longest[s].items()))}"
        for s in VARIANTS if s in longest)]
    if far is not None:
        trained = int(whole["train_length"].iloc[0])
        means = ext.groupby("study")["accuracy"].mean()
        parts.append(f"trained at length {trained}, scored at {far}: " + ", ".join(
            f"{VARIANTS[s]} {means[s]:.3f}" for s in VARIANTS if s in means))
    if not per_seed:  # no seed could be judged: the claim is neither shown nor refuted
        return {}, "; ".join(parts), UNRESOLVED
    return per_seed, "; ".join(parts)


def frequency_steps(t, study, target):
    """Steps each frequency run first met `target` held-out accuracy (None: never), by
    (model, sampling, learn, seed)."""
    evals = t.study(study, "evals")
    if evals is None:
        return {}
    return {key: crossing_step(g, "accuracy", target)
            for key, g in evals.groupby(["model", "sampling", "learn", "seed"], dropna=False)}


def _faster(a, b):
    """Whether the run that met its criterion at step a (None: never) was faster than b's;
    None where neither met it."""
    if a is None and b is None:
        return None
    return b is None or (a is not None and a < b)


def speed_claim(t):
    """Claim 13: per seed, the phased LSTM (the paper's periods on palindromes; the paper's
    settings on the frequency task) meets its criterion sooner than the LSTM in more than half
    of the comparisons where either meets it: the palindrome criterion at each input length,
    the frequency target under each sampling."""
    pairs = []  # (seed, what, phased step, lstm step)
    lstm, short = t.study(R.LSTM_MEMORY), t.study(R.PHASED_SHORT)
    if lstm is not None and short is not None:
        joint = short.merge(lstm, on=["seed", "input_length"], suffixes=("", "_lstm"))
        for _, r in joint.iterrows():
            pairs.append((r["seed"], f"palindromes {int(r['input_length'])}",
                          _step(r["reached_step"]), _step(r["reached_step_lstm"])))
    steps = frequency_steps(t, R.FREQUENCY_STUDY, t.frequency_target)
    for (model, sampling, learn, seed), step in steps.items():
        if model != "phased":
            continue
        other = next((v for (m, s2, _, sd), v in steps.items()
                      if m == "lstm" and s2 == sampling and sd == seed), "none")
        if other != "none":
            pairs.append((seed, f"frequency {sampling}", step, other))
    if not pairs:
        return {}, "no runs"
    per_seed, counts = {}, {}
    for seed, what, a, b in pairs:
        fast = _faster(a, b)
        if fast is not None:
            counts.setdefault(seed, []).append(fast)
    per_seed = {s: sum(v) > len(v) / 2 for s, v in counts.items()}
    if not counts:
        return {}, "neither model met its criterion in any comparison", UNRESOLVED
    shown = "; ".join(f"{what}: phased {_steps_text(a)}, LSTM {_steps_text(b)}"
                      for seed, what, a, b in pairs if seed == min(s for s, *_ in pairs))
    won = sum(sum(v) for v in counts.values())
    judged = sum(len(v) for v in counts.values())
    return per_seed, (f"steps to the criterion (palindromes) or to {t.frequency_target:.0%} "
                      f"held-out accuracy (frequency task), seed {min(s for s, *_ in pairs)}: "
                      f"{shown}; the phased LSTM first in {won} of {judged} comparisons")


def _step(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _steps_text(step):
    return "never" if step is None else f"{step:,.0f}"


def async_claim(t):
    """Claim 14: per seed, on asynchronous samples the phased LSTM ends with a higher held-out
    accuracy than the LSTM, beyond the held-out noise."""
    runs = t.study(R.FREQUENCY_STUDY)
    if runs is None or not {"lstm", "phased"} <= set(runs["model"]):
        return {}, "no runs"
    acc = runs.set_index(["model", "sampling", "seed"])
    if not acc.index.is_unique:
        return {}, VARIES.format(R.FREQUENCY_STUDY, "model, sampling and seed"), UNRESOLVED
    per_seed = {}
    for seed in sorted(runs["seed"].unique()):
        if ("phased", "async", seed) in acc.index and ("lstm", "async", seed) in acc.index:
            p, q = acc.loc[("phased", "async", seed)], acc.loc[("lstm", "async", seed)]
            per_seed[seed] = bool(beyond_noise(p["eval_final_accuracy"], q["eval_final_accuracy"],
                                               p["eval_size"], q["eval_size"]))
    means = runs.groupby(["model", "sampling"])["eval_final_accuracy"].mean()
    shown = "; ".join(f"{MODEL_NAMES[m]}: " + ", ".join(
        f"{SAMPLING_NAMES.get(s, s)} {means[(m, s)]:.3f}" for s in sorted(
            {s for mm, s in means.index if mm == m}, key=lambda x: x != "regular"))
        for m in ("lstm", "phased") if m in {mm for mm, _ in means.index})
    return per_seed, f"final held-out accuracy on the frequency task, {shown}"


def timing_claim(t):
    """Claim 15: per seed, (i) learning τ and s: τ moves from its start, and the run ends no
    worse than with τ and s frozen (beyond the held-out noise); and (ii) learning r_on as well
    makes it harder: that run meets the frequency target later than the τ-and-s run, or never,
    or ends below it (beyond the held-out noise)."""
    runs = t.study(R.LEARN_STUDY)
    frozen, ts, all3 = learn_word(()), learn_word(("tau", "s")), learn_word(TIMING)
    if runs is None:
        return {}, "no runs"
    if not {frozen, ts, all3} <= set(runs["learn"]):
        return {}, ("needs the runs with nothing, tau and s, and tau, s and r_on learned; the study "
                    f"has {', '.join(sorted(set(runs['learn'])))}"), UNRESOLVED
    runs = runs[runs["learn"].isin([frozen, ts, all3])]
    by = runs.set_index(["learn", "seed"])
    if not by.index.is_unique or runs["sampling"].nunique() != 1:
        return {}, VARIES.format(R.LEARN_STUDY, "the learned parameters and seed"), UNRESOLVED
    sampling = runs["sampling"].iloc[0]
    steps = frequency_steps(t, R.LEARN_STUDY, t.frequency_target)
    per_seed = {}
    for seed in sorted(runs["seed"].unique()):
        if not all((w, seed) in by.index for w in (frozen, ts, all3)):
            continue
        f, a, b = (by.loc[(w, seed)] for w in (frozen, ts, all3))
        n = f["eval_size"]
        moved = abs(math.log(a["tau_final"] / a["tau_initial"])) > 0.01
        no_worse = not beyond_noise(f["eval_final_accuracy"], a["eval_final_accuracy"], n, n)
        step_ts = steps.get(("phased", sampling, ts, seed))
        step_all = steps.get(("phased", sampling, all3, seed))
        harder = (_faster(step_ts, step_all) is True
                  or beyond_noise(a["eval_final_accuracy"], b["eval_final_accuracy"], n, n))
        per_seed[seed] = bool(moved and no_worse and harder)
    seed = min(runs["seed"])
    rows = {w: by.loc[(w, seed)] for w in (frozen, ts, all3)}
    said = {w: LEARNED.get(w, w + " learned") for w in rows}
    acc = "; ".join(f"{said[w]} {r['eval_final_accuracy']:.3f}" for w, r in rows.items())
    reach = "; ".join(f"{said[w]} {_steps_text(steps.get(('phased', sampling, w, seed)))}"
                      for w in rows)
    r = rows[all3]
    tau = rows[ts]
    return per_seed, (f"seed {seed}, {SAMPLING_NAMES.get(sampling, sampling)} samples: final "
                      f"held-out accuracy {acc}; steps "
                      f"to {t.frequency_target:.0%}: {reach}; median period {tau['tau_initial']:.2f} "
                      f"→ {tau['tau_final']:.2f} ms (tau, s learned); r_on {r['r_on_initial']:.3f} "
                      f"→ {r['r_on_final']:.3f} (all three learned)")


CLAIMS = {
    12: "The phased LSTM remembers much longer than the LSTM, whose memory decays through its "
        "forget gate; how long is set by the gate's period.",
    13: "Sparse updates let the phased LSTM converge faster.",
    14: "The time gate suits inputs that arrive asynchronously.",
    15: "The gate's period and shift can be learned in training; learning its open ratio as "
        "well makes convergence harder.",
}

CHECKS = {12: memory_claim, 13: speed_claim, 14: async_claim, 15: timing_claim}

