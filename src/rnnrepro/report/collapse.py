"""The report's "Learned, then lost" subsection: the runs that reached the convergence
criterion and lost it, what was measured around the loss, and every word the subsection
chooses by those numbers (`Collapse.words`), so that its template holds prose and
placeholders. The subsection's template is report/templates/02_collapse.tex.j2.
"""

import statistics
from dataclasses import dataclass, field

import pandas as pd

from rnnrepro.analysis.outcomes import CHANCE_ACCURACY, CHANCE_LOSS, NEAR_MISS
from rnnrepro.analysis.scorecard import init_label
from rnnrepro.analysis.tables import SETTING_FIELDS
from rnnrepro.report.latex import raw
from rnnrepro.report.words import count_word, number, plural

OPTIMIZER_NAMES = {"rmsprop": "RMSprop", "adam": "Adam"}


@dataclass
class Collapse:
    """The lost runs of the main palindrome studies (each once) and what they tell: `count`
    lost (a longer run repeating a shorter one's collapse is `repeated`, not counted),
    `collapsed` of them more than NEAR_MISS below the criterion, `after` of those trained on
    after the loss; how many of those spiked, stayed saturated, grew their weights, got
    smaller gradients, or ended at chance; medians; and how often runs fell (`falls`)."""

    runs: list = field(default_factory=list)
    count: int = 0
    falls: dict = None
    repeated: int = 0
    models: list = field(default_factory=list)
    collapsed: int = 0
    after: int = 0
    rnn_10: int = 0
    spiked: int = 0
    saturated_more: int = 0
    norm_grew: int = 0
    grad_fell: int = 0
    uniform: int = 0
    median: dict = field(default_factory=dict)
    median_after: dict = field(default_factory=dict)
    near_miss: float = NEAR_MISS
    chance_loss: float = CHANCE_LOSS
    chance_accuracy: float = CHANCE_ACCURACY

    @property
    def words(self):
        return collapse_words(self)


def collapse_words(c):
    """Every word of the subsection that the numbers choose (singular or plural, all or some)."""
    n, k, a, u = c.count, c.collapsed, c.after, c.uniform
    models = {("rnn",): (", a vanilla RNN", ", all of them vanilla RNNs"),
              ("lstm",): (", an LSTM", ", all of them LSTMs")}.get(tuple(c.models), ("", ""))
    unlost = k - a  # collapsed runs lost at their last evaluation
    f = c.falls or {}
    reached, fell, lost = f.get("reached", 0), f.get("fell", 0), f.get("lost", 0)
    return {
        # how often falling below the criterion happens, and how rarely a run stays below
        "falling": "common" if fell * 2 >= reached else "not rare" if fell else "absent here",
        "staying": "rare" if lost * 5 < reached else "less so",
        "reached_runs": plural(reached, "run", "runs"), "falls": plural(f.get("falls", 0), "fall", "falls"),
        "by_optimizer": [{"name": OPTIMIZER_NAMES.get(o, o), **g}
                         for o, g in sorted((f.get("by_optimizer") or {}).items())],
        "Count": count_word(n), "runs": plural(n, "run", "runs"), "models": plural(n, *models),
        "rows": plural(c.repeated, "row", "rows"), "repeated": count_word(c.repeated).lower(),
        "It_all": plural(n, "It", "All of them"), "It_every": plural(n, "It", "Every one of them"),
        "it_they": plural(n, "it", "they"), "median_of": plural(n, "", "a median of "),
        "collapsed_median_of": plural(k, "", "a median of "), "collapsed_runs": plural(k, "run", "runs"),
        "in_spiked": ("it" if k == 1 else "every one of them" if c.spiked >= k
                      else f"{c.spiked} of them"),
        "medians": plural(k, "", "medians: "),
        "Collapsed": count_word(k), "not_runs": plural(k, "it is not a run", "these are not runs"),
        "after_spike": ("after" if k == 1 else "all of them after" if c.spiked == k
                        else f"{c.spiked} of them after"),
        "rnn_10_runs": plural(c.rnn_10, "run", "runs"),
        "Unlost": count_word(unlost), "unlost_their": plural(unlost, "its", "their"),
        "for_after": ("the run" if a == 1 else ("the other " if a < k else "the ")
                      + count_word(a).lower() + " runs"),
        "it_is": plural(a, "it is", "they are"), "it_ends": plural(a, "it ends", "every one ends"),
        "median_note": plural(a, "", " (median)"), "its": plural(a, "its", "their"),
        "uniform_end": plural(u, "ends", "end"), "uniform_its": plural(u, "its", "their"),
        "medians_note": plural(a, "", " (medians over the runs)"),
        "that_every": plural(a, "that run", "every run"), "that_any": plural(a, "that run", "any run"),
        "not_none": plural(a, "not", "in no run"), "it_stays": plural(a, "it stays", "they stay"),
        "still_receive": plural(a, "the run still receives", "the runs still receive"),
        "run_is": plural(a, "the run is", "the runs are"),
        "W": raw(r"\bm W_{hh}" if c.models == ["rnn"] else r"\bm W_{h}"),
    }


def _falls(runs):
    """How often the runs that reached the criterion fell below it again (outcomes.classify's
    `falls`), and how many of them did not come back, in all and per optimizer. A run whose
    setting and seed were also trained for longer is left out: the longer run repeats its
    steps, falls included."""
    if runs.empty:
        return None
    same = [f for f in SETTING_FIELDS if f != "steps" and f in runs] + ["input_length", "seed"]
    longest = runs.groupby(same, dropna=False)["steps"].transform("max")
    reached = runs[(runs["steps"] == longest) & runs["outcome"].isin(["kept", "lost"])]

    def count(df):
        return {"reached": len(df), "fell": int((df["falls"] > 0).sum()), "falls": int(df["falls"].sum()),
                "lost": int((df["outcome"] == "lost").sum())}

    return count(reached) | {"by_optimizer": {o: count(g) for o, g in reached.groupby("optimizer")}}


def collapses(t, studies):
    """Every palindrome run of `studies` that reached the criterion and lost it, once each
    (studies share runs), with what outcomes.classify measured around the loss. A lost run
    that ends more than outcomes.NEAR_MISS below the criterion collapsed; the others ended
    just below it. The counts and medians describe the collapsed runs: a loss comes with a
    spike when its peak gradient norm tops both the clipping threshold and what an evaluation
    interval typically peaked at while the task was held."""
    frames = [r for s in studies if (r := t.study(s)) is not None]
    every = pd.concat(frames).drop_duplicates("run_id") if frames else pd.DataFrame()
    lost = every[every["outcome"] == "lost"] if len(every) else every
    rows = []
    for r in lost.sort_values(["model", "optimizer", "input_length", "steps", "seed"]).itertuples() \
            if len(lost) else []:
        rows.append({
            "run_id": r.run_id, "model": r.model, "optimizer": r.optimizer, "lr": float(r.lr),
            "input_length": int(r.input_length), "steps": int(r.steps), "seed": int(r.seed),
            "init": r.init, "init_label": init_label(r.init, r.init_std), "max_norm": float(r.max_norm),
            "reached": int(r.reached_step), "last_held": int(r.last_held_step), "lost": int(r.lost_step),
            "final": float(r.eval_final_accuracy), "final_loss": number(r.eval_final_loss),
            "collapsed": r.eval_final_accuracy < t.threshold - NEAR_MISS,
            **{key: number(getattr(r, column)) for key, column in (
                ("held_grad", "held_grad_norm"), ("held_peak", "held_peak_grad_norm"),
                ("peak_grad", "peak_grad_norm"), ("after_grad", "after_grad_norm"),
                ("sat_held", "saturation_held"), ("sat_final", "saturation_final"),
                ("w_held", "w_h_norm_held"), ("w_final", "w_h_norm_final"))}})
    falls = _falls(every)
    if not rows:
        return Collapse(falls=falls)
    # A longer run of the same setting and seed repeats the shorter one's steps: where both
    # lost the task at the same evaluation with the same spike, it is one collapse seen twice,
    # counted once (the table marks the longer run's row).
    event = ("model", "optimizer", "lr", "input_length", "seed", "init_label", "max_norm",
             "reached", "last_held", "lost", "peak_grad")
    for r in rows:
        r["repeats"] = next((o["steps"] for o in rows if o["steps"] < r["steps"]
                             and all(o[k] == r[k] for k in event)), None)
    told = [r for r in rows if r["collapsed"] and r["repeats"] is None]
    # whether a run comes back can only be told of one that trained on after the loss
    after = [r for r in told if r["after_grad"] is not None]

    def median(key, runs):
        values = [r[key] for r in runs if r[key] is not None]
        return statistics.median(values) if values else None

    def count(test, runs, *keys):
        return sum(test(r) for r in runs if all(r[k] is not None for k in keys))

    return Collapse(
        runs=rows, count=sum(r["repeats"] is None for r in rows), falls=falls,
        repeated=sum(r["repeats"] is not None for r in rows),
        models=sorted({r["model"] for r in rows}),
        collapsed=len(told), after=len(after),
        rnn_10=sum(r["model"] == "rnn" and r["input_length"] == 10 for r in told),
        spiked=count(lambda r: r["peak_grad"] > max(r["max_norm"], r["held_peak"] or 0), told,
                     "peak_grad"),
        # a rise counts above 5 points of saturation, or 5 % of the spectral norm
        saturated_more=count(lambda r: r["sat_final"] > r["sat_held"] + 0.05, after,
                             "sat_held", "sat_final"),
        norm_grew=count(lambda r: r["w_final"] > 1.05 * r["w_held"], after, "w_held", "w_final"),
        grad_fell=count(lambda r: r["after_grad"] < r["held_grad"], after, "after_grad", "held_grad"),
        # ends where a uniform guess over the digits would: within 1 % of its loss
        uniform=count(lambda r: abs(r["final_loss"] - CHANCE_LOSS) < 0.01 * CHANCE_LOSS, after,
                      "final_loss"),
        median={k: median(k, told) for k in ("peak_grad", "held_peak", "held_grad", "final")},
        median_after={k: median(k, after) for k in ("held_grad", "after_grad", "sat_held", "sat_final",
                                                     "w_held", "w_final", "final_loss")})
