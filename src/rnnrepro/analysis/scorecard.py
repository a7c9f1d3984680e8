"""The original report's claims (SPEC §5), each checked against this run's tables.

Every verdict is computed here from the tables; nothing is typed by hand. A claim about
which palindrome runs converge is judged seed by seed: it holds for a seed when every
expectation it makes holds for that seed's runs. A run is expected to converge when the
claim says so, and then it must reach the criterion and end at or above it; a run the claim says
fails must never reach it: a run that reached the criterion and lost it (outcomes.py) is
not a run that could not learn. The verdict (outcomes.share_verdict) is "held" for every
seed, "not held" for none, and in between "mostly held", "mostly not held" or, where the
Wilson interval of the share of seeds does not tell, "unresolved"; every share comes with
that interval. A comparison (claims 3 and 6) is judged by the mean paired difference over
seeds x lengths and its bootstrap interval: held above zero, not held below, else (or
with fewer than outcomes.MIN_PAIRS pairs) unresolved. "Not run": the config has no runs that
could test the claim. The criterion is held-out accuracy at or above
report.convergence_threshold (its default: the schema).
"""

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from rnnrepro.analysis.outcomes import crossing_step
from rnnrepro.analysis.phased import CHECKS as PHASED_CHECKS
from rnnrepro.analysis.phased import CLAIMS as PHASED_CLAIMS
from rnnrepro.analysis.statistics import difference_verdict, paired_interval, share_verdict, wilson
from rnnrepro.analysis.tables import SAMPLE_CHECKPOINTS, read_study, study_table_path
from rnnrepro.config import roles as R
from rnnrepro.config.roles import INIT_LR_STUDY, INIT_STUDY, TEXT_STUDY
from rnnrepro.config.spec import reference_order
from rnnrepro.files import BadFile, read_json

CLAIMS = {
    1: "The vanilla RNN with Adam converges for input lengths 5, 6 and 7 within 10k steps, "
       "but not for 8, 9 and 10.",
    2: "Trained for 20k steps, the RNN with Adam converges for lengths 8 and 9 but not 10; "
       "length 10 still fails after 40k steps.",
    3: "Adam does better than RMSprop for the vanilla RNN.",
    4: "The RNN's accuracy falls as the input length grows.",
    5: "The LSTM with Adam converges for lengths 5 to 9 within 10k steps; length 10 needs a "
       "learning rate of 0.01.",
    6: "The LSTM outperforms the vanilla RNN on the longer input lengths.",
    7: "The corpus has 540,241 characters, 87 of them distinct.",
    8: "The text model reaches about 70% training accuracy within 30k steps.",
    9: "Training at temperature 0.5 converges earlier than at 1; at 2 it converges more slowly.",
    10: "Early greedy samples (step 100) are dominated by spaces and repeated characters.",
    11: "The LSTM cell has 4(nd + n^2 + n) trainable parameters.",
    **PHASED_CLAIMS,
}


class Tables:
    """The study tables, by study name. A view maps a name to (study, {column: value}):
    the named study's rows that match, so a claim written for `rnn_adam` can be judged on,
    say, the RNN runs of the initialisation study."""

    def __init__(self, tables_dir, threshold=None, views=None, frequency_target=None,
                 extrapolation_size=None):
        self.dir, self.threshold = Path(tables_dir), threshold
        self.views = views or {}
        # Section 2's: the frequency task's accuracy target, the extrapolation's held-out size
        self.frequency_target, self.extrapolation_size = frequency_target, extrapolation_size

    def table(self, name):
        """results/tables/<name>.csv (extrapolation, grad_norms), or None where it is not made."""
        from rnnrepro.files import read_table

        path = self.dir / f"{name}.csv"
        columns = {"extrapolation": ("study", "seed", "length", "train_length", "accuracy")}
        numeric = {"extrapolation": ("seed", "length", "train_length", "accuracy")}
        if not path.exists():
            return None
        return read_table(path, f"{name} table", columns.get(name, ()), numeric.get(name, ()),
                          rows=True)

    def study(self, name, table="runs"):
        real, where = self.views.get(name, (name, {}))
        df = read_study(self.dir, real, table)
        if df is None:
            return None
        if table == "runs" and self.threshold is not None and "outcome_threshold" in df:
            read_at = set(df["outcome_threshold"].dropna())
            if read_at and read_at != {self.threshold}:
                raise BadFile(f"{study_table_path(self.dir, real, 'runs')}: its runs' outcomes were "
                              f"read at a convergence threshold of {', '.join(map(str, read_at))}, "
                              f"and this judges at {self.threshold}: aggregate the study again "
                              "at this threshold")
        for column, value in where.items():
            keep = df[column].isin(value) if isinstance(value, (list, tuple, set)) else df[column] == value
            df = df[keep]
        return df if len(df) or not where else None

    def converged(self, runs):
        if self.threshold is None:
            raise ValueError("these tables were opened without a convergence threshold")
        return runs["eval_final_accuracy"] >= self.threshold


def verdict(per_seed):
    """per_seed: {seed: bool or None}; None = this seed has no runs to judge. Returns the
    verdict (outcomes.share_verdict), the seeds it held for and the seeds judged."""
    judged = {s: v for s, v in per_seed.items() if v is not None}
    held = sum(judged.values())
    return share_verdict(held, len(judged)), held, len(judged)


def _lengths_text(lengths):
    return ", ".join(str(int(x)) for x in sorted(lengths)) or "none"


def pct_interval(lo, hi):
    return f"{100 * lo:.0f}-{100 * hi:.0f}%"


def rate_text(k, n):
    """k/n with its Wilson 95 % interval, as the scorecard prints a rate."""
    lo, hi = wilson(k, n)
    return f"{k}/{n} [{pct_interval(lo, hi)}]"


def expectation_met(outcome, should_converge):
    """A run meets "converges" when it ended at or above the criterion (kept), and "does not
    converge" when it never reached it; a run that reached it and lost it meets neither."""
    return outcome == "kept" if should_converge else outcome == "never"


def convergence_matches(t, expectations):
    """(seed, expectation met) for every run an expectation covers, and the measured text.
    expectations: list of (study, input_length, should_converge); lengths a study did not
    run are skipped."""
    matches, measured = [], []
    for study, want in _group(expectations).items():
        runs = t.study(study)
        if runs is None:
            continue
        runs = runs[runs["input_length"].isin(list(want))]
        parts = []
        for length, g in runs.groupby("input_length"):
            kept, lost = (g["outcome"] == "kept").sum(), g[g["outcome"] == "lost"]
            part = f"{int(length)}: {rate_text(int(kept), len(g))}"
            if len(lost):
                part += (f", {len(lost)} lost (at step " + ", ".join(
                    f"{int(x):,}" for x in sorted(lost["lost_step"])) + ")")
            parts.append(part)
        if parts:
            measured.append(f"{study} converged (seeds, 95% interval) at length " + "; ".join(parts))
        matches += [(r.seed, expectation_met(r.outcome, want[r.input_length]))
                    for r in runs.itertuples()]
    return matches, "; ".join(measured) or "no runs"


def convergence_claim(t, expectations):
    matches, measured = convergence_matches(t, expectations)
    per_seed = {}
    for seed, ok in matches:
        per_seed[seed] = per_seed.get(seed, True) and ok
    return per_seed, measured


def _group(expectations):
    out = {}
    for study, length, should in expectations:
        out.setdefault(study, {})[length] = should
    return out


def mean_eval_accuracy(t, study):
    """Mean held-out accuracy over all evaluations of a run (area under the accuracy curve
    divided by its length): rewards learning sooner, not only learning at all."""
    evals = t.study(study, "evals")
    if evals is None:
        return None
    return evals.groupby(["seed", "input_length"])["accuracy"].mean()


def better_claim(t, good, bad, lengths=None):
    """`good` beats `bad`: the paired difference of mean held-out accuracy over training,
    one pair per seed x length, judged by its bootstrap interval (outcomes.paired_interval)."""
    a, b = mean_eval_accuracy(t, good), mean_eval_accuracy(t, bad)
    if a is None or b is None:
        return {}, "no runs"
    joint = pd.concat({"good": a, "bad": b}, axis=1).dropna().reset_index()
    if lengths is not None:
        joint = joint[joint["input_length"].isin(lengths(joint["input_length"]))]
    if joint.empty:
        return {}, "no runs of both settings at the same seed and length"
    per_seed = {s: bool(g["good"].mean() > g["bad"].mean()) for s, g in joint.groupby("seed")}
    diff = joint["good"] - joint["bad"]
    mean, lo, hi = paired_interval(diff)
    interval = (f"95% bootstrap interval {lo:+.3f} to {hi:+.3f}" if lo is not None
                else "one pair: no interval")
    measured = (f"mean held-out accuracy over training, {good} {joint['good'].mean():.3f} vs "
                f"{bad} {joint['bad'].mean():.3f} (lengths {_lengths_text(joint['input_length'].unique())}); "
                f"paired difference {mean:+.3f} ({interval}; {int((diff > 0).sum())} of "
                f"{len(diff)} seed x length pairs favour {good})")
    return per_seed, measured, {"verdict": difference_verdict(lo, hi, len(diff)), "interval_lo": lo,
                                "interval_hi": hi, "interval_of": "mean paired difference",
                                "pairs": len(diff)}


def longer_half(lengths):
    ls = sorted(set(lengths))
    return ls[len(ls) // 2:]


def accuracy_falls_claim(t, study=R.RNN_ADAM):
    runs = t.study(study)
    if runs is None or runs["input_length"].nunique() < 2:
        return {}, "needs at least two input lengths"
    per_seed = {}
    for seed, g in runs.groupby("seed"):
        g = g.sort_values("input_length")
        acc = g["eval_final_accuracy"].to_numpy()
        rho = g["eval_final_accuracy"].rank().corr(g["input_length"].rank())  # Spearman
        per_seed[seed] = bool(acc[-1] < acc[0] and (rho < 0 if rho == rho else False))
    means = runs.groupby("input_length")["eval_final_accuracy"].mean()
    measured = "final held-out accuracy by length: " + ", ".join(
        f"{int(L)}: {v:.3f}" for L, v in means.items())
    return per_seed, measured


def text_runs(t):
    runs = t.study(TEXT_STUDY)
    return runs, t.study(TEXT_STUDY, "evals"), t.study(TEXT_STUDY, "samples")


def reference_text_run(runs):
    """The row of the report's reference text run (spec.reference_order)."""
    keys = [reference_order(t, s) for t, s in zip(runs["temperature"], runs["seed"])]
    return runs.iloc[min(range(len(keys)), key=keys.__getitem__)]


def text_accuracy_claim(t):
    runs, _, _ = text_runs(t)
    if runs is None:
        return {}, "no runs"
    ref = reference_text_run(runs)
    acc = ref["final_batch_accuracy"]
    return ({0: bool(acc >= 0.65)},
            f"training accuracy (mean of the last {int(ref['final_window'])} logged steps) {acc:.3f} after "
            f"{int(ref['steps'])} steps; held-out accuracy {ref['eval_final_accuracy']:.3f} at the "
            f"end, while held-out loss was lowest at step {int(ref['eval_lowest_loss_step']):,} "
            f"({ref['eval_lowest_loss']:.3f}; {ref['eval_final_loss']:.3f} at the end)")


# Claim 9's targets: held-out accuracy at these fractions of the T = 1 run's final one, and
# held-out loss within this factor of the T = 1 run's lowest: one threshold does not decide it
ACCURACY_TARGETS = (0.8, 0.9, 0.95)
LOSS_TARGET = 1.05


def steps_to_targets(evals, ref, seed):
    """Per target (label, {T: the step its held-out curve met the target (crossing_step, to
    the nearest step), or None}) for the run of `seed` at each training temperature in `evals`."""
    targets = [(f"accuracy {f:.0%} of T = 1's final ({f * ref['eval_final_accuracy']:.3f})",
                "accuracy", f * ref["eval_final_accuracy"]) for f in ACCURACY_TARGETS]
    targets.append((f"loss within {LOSS_TARGET - 1:.0%} of T = 1's lowest "
                    f"({LOSS_TARGET * ref['eval_lowest_loss']:.3f})", "loss",
                    LOSS_TARGET * ref["eval_lowest_loss"]))
    rows = []
    for label, column, target in targets:
        steps = {}
        for T, e in evals.groupby("temperature"):
            e = e[e["seed"] == seed]
            at = crossing_step(e, column, target) if len(e) else None
            steps[float(T)] = None if at is None else round(at)
        rows.append((label, steps))
    return rows


CLAIM_9_TEMPERATURES = (0.5, 1.0, 2.0)


def _ordered(steps, last):
    """Whether T = 0.5 met a target before T = 1 and T = 2 after, and by how many steps:
    (held, T = 1's step minus T = 0.5's, T = 2's minus T = 1's). A run that never met it
    counts as meeting it at its last evaluation (`last`), which can only shrink its lag."""
    lo, mid, hi = (steps[T] if steps.get(T) is not None else last[T] + 1
                   for T in CLAIM_9_TEMPERATURES)
    return lo < mid < hi, mid - lo, hi - mid


def temperature_claim(t):
    """Claim 9 at every target of steps_to_targets, on the reference seed: it holds at a
    target when T = 0.5 met it before T = 1 and T = 2 after. With one seed per temperature
    the targets decide it (held at every target, not held at none, else unresolved). With
    several, T = 0.5's lead over T = 1 and T = 1's over T = 2 (in steps, each seed's mean over
    the targets) are two paired differences across seeds, each with its bootstrap interval:
    held when both lie above zero, not held when either lies below, as claims 3 and 6 are
    judged. The row carries the interval of the weaker lead."""
    runs, evals, _ = text_runs(t)
    if runs is None:
        return {}, "no runs"
    if not set(CLAIM_9_TEMPERATURES) <= set(runs["temperature"]):
        return {}, "needs runs at temperatures 0.5, 1 and 2"
    ref = reference_text_run(runs)
    seeds = sorted(set.intersection(*(set(evals[evals["temperature"] == T]["seed"])
                                      for T in CLAIM_9_TEMPERATURES)))
    if ref["seed"] not in seeds:
        return {}, (f"seed {int(ref['seed'])}, the reference run's, lacks an evaluated run at one "
                    "of temperatures 0.5, 1 and 2")
    # per seed, per target: the steps it was met at, and (held, T = 0.5's lead over 1, 1's over 2)
    targets, checks = {}, {}
    for seed in seeds:
        targets[seed] = steps_to_targets(evals, ref, seed)
        last = evals[evals["seed"] == seed].groupby("temperature")["step"].max().to_dict()
        checks[seed] = [_ordered(steps, last) for _, steps in targets[seed]]
    per_seed = {seed: all(held for held, _, _ in c) for seed, c in checks.items()}
    held = [h for h, _, _ in checks[ref["seed"]]]
    faster = sum(a > 0 for _, a, _ in checks[ref["seed"]])
    slower = sum(b > 0 for _, _, b in checks[ref["seed"]])
    parts = [f"{label}: " + ", ".join(
        f"T={T:g} {f'{v:,.0f}' if v is not None else 'never'}" for T, v in steps.items()
        if T in CLAIM_9_TEMPERATURES) for label, steps in targets[ref["seed"]]]
    where = ("one seed per temperature" if len(seeds) == 1
             else f"seed {int(ref['seed'])} of {len(seeds)} per temperature")
    measured = (f"step at which each held-out curve met each target (interpolated between "
                f"evaluations), {where}: T=0.5 before T=1 at {faster} and T=2 after T=1 at "
                f"{slower} of {len(held)} targets; " + "; ".join(parts))
    if len(seeds) == 1:
        word = "held" if all(held) else "not held" if not any(held) else "unresolved"
        return ({seeds[0]: all(held)}, measured,
                {"verdict": word, "interval_of": "targets", "pairs": len(held)})
    leads = {}  # lead name: (mean, lo, hi) over seeds
    for i, name in ((1, "T=0.5 over T=1"), (2, "T=1 over T=2")):
        leads[name] = paired_interval([np.mean([c[i] for c in checks[s]]) for s in seeds])
    verdicts = [difference_verdict(lo, hi, len(seeds)) for _, lo, hi in leads.values()]
    word = ("not held" if "not held" in verdicts
            else "held" if set(verdicts) == {"held"} else "unresolved")
    # the weaker lead: one whose interval lies below zero, else the lowest lower bound
    weaker = min(leads, key=lambda k: (leads[k][2] >= 0, leads[k][1]))
    measured += f". Over {len(seeds)} seeds, the mean lead in steps (mean over the targets) of " + \
        ", and of ".join(f"{k} is {m:+,.0f} (95% bootstrap interval {lo:+,.0f} to {hi:+,.0f})"
                         for k, (m, lo, hi) in leads.items()) + \
        f"; the order held at every target for {sum(per_seed.values())} of {len(seeds)} seeds"
    return per_seed, measured, {"verdict": word, "interval_lo": leads[weaker][1],
                                "interval_hi": leads[weaker][2], "weaker_lead": weaker,
                                "interval_of": "seeds' lead in steps", "pairs": len(seeds)}


def early_samples_claim(t):
    runs, _, samples = text_runs(t)
    if runs is None or samples is None or samples.empty:
        return {}, "no samples"
    ref = reference_text_run(runs)
    s = samples[(samples["run_id"] == ref["run_id"]) & (samples["method"] == "greedy")
                & (samples["checkpoint"] == SAMPLE_CHECKPOINTS[0])]
    first = s["step"].min()
    texts = s[s["step"] == first]["text"].astype(str)
    share = sum(_space_or_repeat(x) for x in texts) / len(texts)
    return ({0: bool(share >= 0.5)},
            f"at step {int(first)}, {share:.0%} of greedy sample characters (after the first) are "
            "spaces or repeat the previous character")


def _space_or_repeat(text):
    rest = text[1:]
    if not rest:
        return 0.0
    return sum(c == " " or c == p for p, c in zip(text, rest)) / len(rest)


def corpus_claim(t):
    path = t.dir / "corpus_stats.json"
    if not path.exists():
        return {}, "no corpus statistics"
    stats = read_json(path, "corpus statistics", ("characters", "distinct"))
    ok = stats["characters"] == 540_241 and stats["distinct"] == 87
    return {0: ok}, f"{stats['characters']:,} characters, {stats['distinct']} distinct"


def parameter_claim(t):
    rows = [r for s in (R.LSTM_ADAM, R.LSTM_RMSPROP, R.LSTM_ADAM_LR) if (r := t.study(s)) is not None]
    if not rows:
        return {}, "no LSTM runs"
    runs = pd.concat(rows)
    ok = (runs["cell_parameters"] == runs["cell_formula"]).all()
    r = runs.iloc[0]
    return ({0: bool(ok)}, f"counted {int(r['cell_parameters']):,} = formula {int(r['cell_formula']):,} "
            f"(n = {int(r['hidden'])}, d = 1), in all {len(runs)} LSTM runs")


def _checks(t):
    return {
        1: lambda: convergence_claim(t, R.RNN_PATTERN),
        2: lambda: convergence_claim(t, R.LONG_PATTERN),
        3: lambda: better_claim(t, R.RNN_ADAM, R.RNN_RMSPROP),
        4: lambda: accuracy_falls_claim(t),
        5: lambda: convergence_claim(t, R.LSTM_PATTERN),
        6: lambda: better_claim(t, R.LSTM_ADAM, R.RNN_ADAM, longer_half),
        7: lambda: corpus_claim(t),
        8: lambda: text_accuracy_claim(t),
        9: lambda: temperature_claim(t),
        10: lambda: early_samples_claim(t),
        11: lambda: parameter_claim(t),
        **{n: functools.partial(check, t) for n, check in PHASED_CHECKS.items()},
    }


ROW = ("claim", "original", "measured", "verdict", "held", "judged", "interval_lo",
       "interval_hi", "interval_of", "pairs", "weaker_lead")


def _row(n, check):
    """A claim's scorecard row. A check returns (per_seed, measured), judged by the share of
    seeds (verdict: with its Wilson interval where several seeds were judged), or adds a
    dict that gives its own verdict and interval (the comparisons)."""
    per_seed, measured, *own = check()
    word, held, judged = verdict(per_seed)
    row = dict.fromkeys(ROW) | {"claim": n, "original": CLAIMS[n], "measured": measured,
                                "verdict": word, "held": held, "judged": judged}
    if judged > 1:
        row["interval_lo"], row["interval_hi"] = wilson(held, judged)
        row["interval_of"] = "share of seeds"
    if own:
        row.update(own[0])
    return row


def scorecard(tables_dir, threshold, frequency_target=None, extrapolation_size=None):
    t = Tables(tables_dir, threshold, frequency_target=frequency_target,
               extrapolation_size=extrapolation_size)
    return pd.DataFrame([_row(n, check) for n, check in _checks(t).items()], columns=list(ROW))


# ---------------------------------------------------------------- initialisation study

INIT_CLAIMS = (1, 4, 5, 6)


def init_label(init, std):
    if init == "normal":
        return f"N(0, sd {std:g})"
    return {"default": "default U(±1/√n)", "xavier": "Xavier", "orthogonal": "orthogonal"}.get(init, init)


def init_variants(tables_dir):
    runs = Tables(tables_dir).study(INIT_STUDY)
    if runs is None:
        return []
    pairs = runs[["init", "init_std"]].drop_duplicates().itertuples(index=False)
    return sorted(pairs, key=lambda p: (p.init != "default", p.init, -p.init_std))


def init_views(tables_dir, init, std):
    """Part-1 study names mapped to the runs of one initialisation (the seeds of the
    initialisation study only, so every variant is judged on the same seeds)."""
    seeds = sorted(Tables(tables_dir).study(INIT_STUDY)["seed"].unique())
    same = {"init": init, "init_std": std, "seed": seeds}
    lr = (INIT_LR_STUDY, same)
    if init == "default" or Tables(tables_dir).study(INIT_LR_STUDY) is None:
        lr = (R.LSTM_ADAM_LR, {**same, "init_std": std})  # the main study has the default init
    return {R.RNN_ADAM: (INIT_STUDY, {**same, "model": "rnn"}),
            R.LSTM_ADAM: (INIT_STUDY, {**same, "model": "lstm"}), R.LSTM_ADAM_LR: lr}


# each model's part of the pattern: the RNN's (claim 1) and the LSTM's (claim 5)
MODEL_PATTERNS = {"rnn": R.RNN_PATTERN, "lstm": R.LSTM_PATTERN}


def share_met(t, expectations):
    """The share of (expectation, seed) pairs met, or None where no run is covered."""
    matches, _ = convergence_matches(t, expectations)
    return sum(ok for _, ok in matches) / len(matches) if matches else None


def init_scorecard(tables_dir, threshold):
    """Claims 1, 4, 5 and 6 under every initialisation of the study, and how much of the
    original's convergence pattern each reproduces (share of expectation × seed pairs met):
    the whole pattern, and each model's part of it, since the original's two models need not
    have been initialised alike."""
    rows = []
    for v in init_variants(tables_dir):
        t = Tables(tables_dir, threshold, views=init_views(tables_dir, v.init, v.init_std))
        shares = {"pattern_match": share_met(t, R.RNN_PATTERN + R.LSTM_PATTERN)} | {
            f"{model}_match": share_met(t, part) for model, part in MODEL_PATTERNS.items()}
        checks = _checks(t)
        for n in INIT_CLAIMS:
            rows.append({"init": v.init, "init_std": v.init_std, "label": init_label(*v),
                         **shares, **_row(n, checks[n])})
    return pd.DataFrame(rows, columns=["init", "init_std", "label", "pattern_match",
                                       *(f"{m}_match" for m in MODEL_PATTERNS), *ROW])


def write_scorecards(tables_dir, threshold, out, init_out=None, frequency_target=None,
                     extrapolation_size=None):
    """scorecard.csv, and where asked the per-initialisation scorecard_init.csv."""
    from rnnrepro.files import write_table

    write_table(out, scorecard(tables_dir, threshold, frequency_target, extrapolation_size))
    if init_out:
        write_table(init_out, init_scorecard(tables_dir, threshold))
