"""The report's figures (SPEC §4, §6), drawn with seaborn/matplotlib from the pipeline's tables.

    draw(name, tables_dir, smoothing, threshold) -> matplotlib Figure
    save(fig, paths)   # .pdf (vector) and/or .png (PNG_DPI), each written atomically

`name` is a key of figures.FIGURES, which names the studies it reads (tables in
tables_dir/studies/<study>/). Figures are WIDTH inches wide, drawn at
the size the report includes them (\\linewidth), so the font sizes below are the printed ones.

Statistics, the same in every figure: a line is the mean over seeds and its band (or error
bar) ±1 sample standard deviation across seeds (BAND). On a logarithmic axis (palindrome
losses, gradient norms) both are taken of the logarithm: the geometric mean, and a band
that multiplies and divides it by one geometric standard deviation. Training curves are
smoothed per run, before averaging, by a trailing rolling mean over `smoothing` training
steps (converted to rows by each run's logging interval). A role whose table is missing or
empty is drawn as a panel that says "no runs".
"""

import logging
import math
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogFormatter  # noqa: E402

from rnnrepro.analysis.tables import read_study  # noqa: E402
from rnnrepro.config import roles as R  # noqa: E402
from rnnrepro.config.roles import INIT_LR_STUDY, INIT_STUDY, TEXT_STUDY  # noqa: E402
from rnnrepro.files import atomic_write  # noqa: E402
from rnnrepro.files import read_table as io_read_table
from rnnrepro.report.registry import FIGURES  # noqa: E402

# PDF font subsetting (pdf.fonttype 42) logs every glyph at INFO, which the CLI's log level shows
logging.getLogger("fontTools").setLevel(logging.WARNING)

WIDTH = 6.3          # inches: LaTeX text width; figures are included at \linewidth
PNG_DPI = 200
BAND = "sd"          # ±1 sample standard deviation across seeds (ddof 1), everywhere
BAND_NOTE = "mean over {n} seeds ± 1 s.d."                          # the figures' own notes
BAND_NOTE_LOG = "geometric mean over {n} seeds ×/÷ 1 geometric s.d."
LENGTH_LABEL = "input length $T$ (palindrome length $T{+}1$)"
LENGTH_TITLE = "input length $T$\n(palindrome length $T{+}1$)"
GATE = {"tau": 10.0, "s": 2.0, "r_on": 0.3}   # fig08's gate, drawn over three periods
GATE_LEAK = 0.05                              # fig08's dashed curve: Neil et al.'s leak α
CB = sns.color_palette("colorblind")
MODEL_COLORS = {"RNN": CB[0], "LSTM": CB[1], "PHASED": CB[2]}
SPLIT_COLORS = {"train": CB[0], "held-out": CB[3]}
VARIANT_STYLES = ["-", "--", ":", "-."]

RC = {
    **sns.axes_style("whitegrid"),
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "sans-serif"],
    "font.size": 9, "axes.labelsize": 9, "axes.titlesize": 9, "figure.titlesize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8,
    "legend.frameon": False, "legend.borderaxespad": 0.3, "legend.handlelength": 2.2,
    "lines.linewidth": 1.4, "lines.markersize": 4, "grid.linewidth": 0.5, "axes.linewidth": 0.8,
    "axes.prop_cycle": matplotlib.cycler(color=CB), "axes.titlelocation": "left",
    "xtick.bottom": True, "ytick.left": True, "xtick.major.size": 3, "ytick.major.size": 3,
    "pdf.fonttype": 42, "savefig.dpi": PNG_DPI,
}


@contextmanager
def style():
    """The report's figure style (fonts sized for WIDTH-inch figures, colour-blind palette)."""
    with matplotlib.rc_context(RC):
        yield


# ---------------------------------------------------------------- tables and statistics


def read_table(path):
    """A table the pipeline wrote, checked as io.read_table checks it; empty when the file
    is missing or has no rows (a study without samples, a figure without a table)."""
    if not Path(path).exists():
        return pd.DataFrame()
    return io_read_table(path)


def smooth(df, y, steps):
    """Trailing rolling mean of `y` over `steps` training steps, per run (rows sorted by step).

    The window in rows is steps / (the run's logging interval), at least one row; the first
    rows of a run average what there is so far.
    """
    if df.empty or steps <= 1:
        return df
    parts = []
    for _, run in df.sort_values("step").groupby("run_id", sort=False):
        gaps = np.diff(run["step"].to_numpy())
        rows = max(1, round(steps / np.median(gaps))) if len(gaps) else 1
        parts.append(run.assign(**{y: run[y].rolling(rows, min_periods=1).mean()}))
    return pd.concat(parts, ignore_index=True)


def mean_band(df, x, y, by=(), log=False):
    """Per (by..., x): mean of `y` over runs (seeds) and the BAND around it.

    Returns columns by..., x, mean, lo, hi, n. With log=True the statistics are taken of
    log10(y) and mapped back (geometric mean ×/÷ geometric s.d.). One run: no band (NaN).
    """
    v = np.log10(df[y].clip(lower=1e-300)) if log else df[y]
    out = (df.assign(_v=v).groupby([*by, x])["_v"].agg(mean="mean", sd="std", n="count")
           .reset_index())
    out["lo"], out["hi"] = out["mean"] - out["sd"], out["mean"] + out["sd"]
    if log:
        out[["mean", "lo", "hi"]] = 10 ** out[["mean", "lo", "hi"]]
    return out.drop(columns="sd")


def band_note(n_seeds, log=False):
    """What a line and its band are, for a figure's note; n_seeds: (fewest, most) seeds a line has."""
    lo, hi = n_seeds
    if hi <= 1:
        return "one seed (no band)"
    return (BAND_NOTE_LOG if log else BAND_NOTE).format(n=f"{lo}" if lo == hi else f"{lo}–{hi}")


def _seeds(frames, by):
    counts = [df.groupby(list(by))["seed"].nunique() for df in frames if not df.empty]
    counts = pd.concat(counts) if counts else pd.Series([0])
    return int(counts.min()), int(counts.max())


# ---------------------------------------------------------------- drawing helpers


def _ramp(values, cmap="viridis", span=(0.0, 0.8)):
    """Sequential colours for ordered values (dark = small), leaving out the palest end."""
    values = sorted(set(values))
    cm = matplotlib.colormaps[cmap]
    pos = np.linspace(*span, len(values)) if len(values) > 1 else [np.mean(span)]
    return {v: cm(p) for v, p in zip(values, pos)}


def _line(ax, agg, x, color, ls="-", marker=None, label=None, max_points=1500):
    """One mean line with its band; long lines are thinned to max_points for compact PDFs."""
    if len(agg) > max_points:
        keep = np.unique(np.r_[np.arange(0, len(agg), math.ceil(len(agg) / max_points)), len(agg) - 1])
        agg = agg.iloc[keep]
    ax.plot(agg[x], agg["mean"], color=color, ls=ls, marker=marker, label=label,
            markevery=max(1, len(agg) // 20))   # at most ~20 markers a line
    ax.fill_between(agg[x], agg["lo"], agg["hi"], color=color, alpha=0.2, lw=0)


def _no_runs(ax, what="no runs"):
    """A centred note in place of data; meaningless tick labels hidden (unless shared)."""
    ax.text(0.5, 0.5, what, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.tick_params(labelbottom=False, labelleft=len(ax.get_shared_y_axes().get_siblings(ax)) > 1)


class _PlainLog(LogFormatter):
    """Log-axis tick labels as plain numbers (2, 0.5, 0.01), minor ones only on short ranges."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:g}"


def _log_y(ax):
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLog())
    ax.yaxis.set_minor_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(1.2, 0.5)))


def _steps_axis(ax):
    """x = training step, from 0, ticks as 5k, 10k; call after plotting (it fixes the limits)."""
    ax.set_xlabel("training step")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if abs(v) >= 1000 else f"{v:g}"))
    ax.set_xlim(left=0)


def _legend_right(ax, handles, title=None):
    return ax.legend(handles=handles, title=title, loc="upper left", bbox_to_anchor=(1.02, 1),
                     alignment="left")


def _spacer():
    return Line2D([], [], ls="none", label=" ")


def _fmt_field(field, v):
    return f"{int(v):,} steps" if field == "steps" else f"{field} {v:g}"


def _variant_labels(frames):
    """Legend labels telling the studies of one panel apart: the spec fields (steps, lr) that
    differ between them, and the input lengths of a study that has fewer than the first."""
    fields = [f for f in ("steps", "lr") if all(f in df for df in frames)
              and len({v for df in frames for v in df[f].unique()}) > 1]
    lengths0 = set(frames[0].input_length)
    labels = []
    for df in frames:
        label = ", ".join(_fmt_field(f, v) for f in fields for v in sorted(df[f].unique())) or df.study.iat[0]
        if set(df.input_length) != lengths0:
            label += f" ($T$ = {', '.join(str(t) for t in sorted(set(df.input_length)))})"
        labels.append(label)
    return labels


def _length_curves(ax, frames, y, smoothing=None, log=False):
    """Mean ± band of `y` against step, one colour per input length; frames after the first
    (longer runs, another learning rate) in other line styles. Returns legend handles and the
    seed counts, or None when there is nothing to draw."""
    frames = [df for df in frames if not df.empty]
    if not frames:
        return _no_runs(ax)
    colors = _ramp(pd.concat([df.input_length for df in frames]))
    for df, ls in zip(frames, VARIANT_STYLES):
        df = smooth(df, y, smoothing) if smoothing else df
        for length, agg in mean_band(df, "step", y, ["input_length"], log).groupby("input_length"):
            _line(ax, agg, "step", colors[length], ls=ls)
    handles = [Line2D([], [], color=c, label=f"{t}") for t, c in colors.items()]
    if len(frames) > 1:
        handles += [_spacer()] + [Line2D([], [], color="0.35", ls=ls, label=label)
                                  for label, ls in zip(_variant_labels(frames), VARIANT_STYLES)]
    if log:
        _log_y(ax)
    return handles, _seeds(frames, ["study", "input_length"])


def _threshold(ax, threshold):
    return ax.axhline(threshold, color="0.25", ls=":", lw=1.1,
                      label=f"convergence threshold {threshold:g}")


# ---------------------------------------------------------------- the figures


class _Tables:
    """A figure's study tables: `studies` (the figure's, in order) read from tables_dir, as
    far as they are in `present`; a study without tables reads as empty ("no runs")."""

    def __init__(self, tables_dir, studies, present):
        self.dir, self.studies, self.present = Path(tables_dir), studies, set(present)

    def __call__(self, study, table):
        df = read_study(self.dir, study, table) if study in self.present else None
        return pd.DataFrame() if df is None else df


def draw_loss(fig, tables, smoothing, threshold):
    ax = fig.subplots()
    drawn = _length_curves(ax, [tables(r, "curves") for r in tables.studies], "loss", smoothing, log=True)
    ax.set_ylabel("training loss (nats)")
    _steps_axis(ax)
    if drawn:
        handles, seeds = drawn
        _legend_right(ax, handles, LENGTH_TITLE)
        ax.set_title(f"{band_note(seeds, log=True)}; loss smoothed: rolling mean over "
                     f"{smoothing:,} steps", fontsize=7.5, color="0.3")


def _accuracy_panel(ax, frames, threshold):
    drawn = _length_curves(ax, frames, "accuracy")
    ax.set_ylabel("held-out accuracy")
    _steps_axis(ax)
    if drawn:
        handles, seeds = drawn
        ax.set_ylim(0, 1.03)
        handles += [_spacer(), _threshold(ax, threshold)]
        _legend_right(ax, handles, LENGTH_TITLE)
        return seeds


def draw_accuracy(fig, tables, smoothing, threshold):
    ax = fig.subplots()
    seeds = _accuracy_panel(ax, [tables(r, "evals") for r in tables.studies], threshold)
    if seeds:
        ax.set_title(band_note(seeds), fontsize=7.5, color="0.3")


def _final_best(ax, runs, threshold):
    """Final (filled, solid) and best (hollow, dashed) held-out accuracy against input length,
    one colour per model, error bars BAND over seeds."""
    runs = {m: df for m, df in runs.items() if not df.empty}
    if not runs:
        return _no_runs(ax)
    for i, (model, df) in enumerate(runs.items()):
        c = MODEL_COLORS[model]
        for j, (col, ls) in enumerate([("eval_final_accuracy", "-"), ("eval_best_accuracy", "--")]):
            agg = df.groupby("input_length")[col].agg(["mean", "std"]).reset_index()
            ax.errorbar(agg.input_length + (2 * i + j - 1.5) * 0.08, agg["mean"], yerr=agg["std"],
                        color=c, ls=ls, marker="o", mfc="white" if j else c, mec=c, capsize=2,
                        elinewidth=0.9)
    ax.set_xticks(sorted(set(pd.concat([df.input_length for df in runs.values()]))))
    ax.set_ylim(0, 1.03)
    return _threshold(ax, threshold), _seeds(runs.values(), ["input_length"])


def draw_rnn_accuracy(fig, tables, smoothing, threshold):
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
    ax = top.subplots()
    seeds = [_accuracy_panel(ax, [tables(R.RNN_ADAM, "evals")], threshold)]
    ax.set_title("(a) RNN, Adam: held-out accuracy during training")
    axes = bottom.subplots(1, 2, sharey=True)
    line = None
    for ax, (opt, name) in zip(axes, [("rmsprop", "RMSprop"), ("adam", "Adam")]):
        drawn = _final_best(ax, {"RNN": tables(f"rnn_{opt}", "runs"),
                                 "LSTM": tables(f"lstm_{opt}", "runs")}, threshold)
        ax.set_title(name)
        if drawn:
            line, n = drawn
            seeds.append(n)
    axes[0].set_ylabel("held-out accuracy")
    bottom.supxlabel(LENGTH_LABEL, fontsize=9)
    bottom.suptitle("(b) final and best held-out accuracy against input length", x=0.01,
                    ha="left", fontsize=9)
    if line:
        handles = [Line2D([], [], color=c, label=m) for m, c in MODEL_COLORS.items()] + [
            _spacer(),
            Line2D([], [], color="0.35", marker="o", label="final"),
            Line2D([], [], color="0.35", marker="o", mfc="white", ls="--", label="best"),
            _spacer(), Line2D([], [], color="0.25", ls=":", lw=1.1, label=line.get_label())]
        _legend_right(axes[1], handles)
    seeds = [n for n in seeds if n]
    if seeds:
        n = min(n[0] for n in seeds), max(n[1] for n in seeds)
        fig.suptitle(band_note(n) + (" (bands and error bars)" if n[1] > 1 else ""), x=0.01,
                     ha="left", fontsize=7.5, color="0.3")


def draw_init_study(fig, tables, smoothing, threshold):
    """Top: final held-out accuracy against input length, one line per initialisation, a
    panel per model (LSTM at lr 0.01 as hollow markers). Bottom: the training loss of the
    initialisation that comes closest to the original's pattern of convergence."""
    from rnnrepro.analysis.scorecard import init_label

    runs, lr_runs = tables(INIT_STUDY, "runs"), tables(INIT_LR_STUDY, "runs")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1])
    axes = top.subplots(1, 2, sharey=True)
    if runs.empty:
        for ax in axes:
            _no_runs(ax)
        return
    variants = runs[["init", "init_std"]].drop_duplicates().sort_values(["init", "init_std"])
    colors = dict(zip(map(tuple, variants.to_numpy()), CB[2:] + CB[:2]))
    for ax, model in zip(axes, ("rnn", "lstm")):
        for (init, std), c in colors.items():
            df = runs[(runs.model == model) & (runs.init == init) & (runs.init_std == std)]
            agg = df.groupby("input_length")["eval_final_accuracy"].mean()
            ax.plot(agg.index, agg.to_numpy(), color=c, marker="o", label=init_label(init, std))
            if model == "lstm" and not lr_runs.empty:
                lr = lr_runs[(lr_runs.init == init) & (lr_runs.init_std == std)]
                for r in lr.groupby("input_length")["eval_final_accuracy"].mean().items():
                    ax.plot(*r, color=c, marker="D", mfc="white", ls="none")
        _threshold(ax, threshold)
        ax.set_title(model.upper())
        ax.set_ylim(-0.03, 1.03)
        ax.set_xticks(sorted(runs.input_length.unique()))
    axes[0].set_ylabel("final held-out accuracy")
    top.supxlabel(LENGTH_LABEL, fontsize=9)
    top.suptitle("(a) final held-out accuracy by initialisation", x=0.01, ha="left", fontsize=9)
    handles, _ = axes[0].get_legend_handles_labels()
    extra = [Line2D([], [], color="0.35", marker="D", mfc="white", ls="none", label="LSTM, lr 0.01")]
    _legend_right(axes[1], handles + ([] if lr_runs.empty else extra), "initialisation")

    scores = io_read_table(tables.dir / "scorecard_init.csv", "initialisation scorecard",
                        ("init", "init_std", "label", "pattern_match"))
    best = scores.sort_values("pattern_match", ascending=False, kind="stable").iloc[0]
    curves = tables(INIT_STUDY, "curves")
    curves = curves[(curves.init == best.init) & (curves.init_std == best.init_std)]
    bottom.suptitle(f"(b) training loss under {best.label}, the closest to the original's "
                    f"pattern ({best.pattern_match:.0%} met)", x=0.01, ha="left", fontsize=9)
    axes = bottom.subplots(1, 2, sharey=True)
    for ax, model in zip(axes, ("rnn", "lstm")):
        drawn = _length_curves(ax, [curves[curves.model == model]], "loss", smoothing, log=True)
        ax.set_title(model.upper())
        _steps_axis(ax)
    axes[0].set_ylabel("training loss (nats)")
    if drawn:
        _legend_right(axes[1], drawn[0], LENGTH_TITLE)


def draw_time_gate(fig, tables, smoothing, threshold):
    from rnnrepro.models.phased import time_gate

    tau, s, r_on = GATE["tau"], GATE["s"], GATE["r_on"]
    t = np.linspace(0, s + 3 * tau, 1281)
    ax = fig.subplots()
    for n in range(3):
        ax.axvspan(s + n * tau, s + (n + r_on) * tau, color=CB[2], alpha=0.15, lw=0,
                   label="open phase" if n == 0 else None)
    ax.plot(t, time_gate(t, tau, s, r_on, 0.0).numpy(), color=CB[0], label=r"$k_t$, $\alpha = 0$")
    ax.plot(t, time_gate(t, tau, s, r_on, GATE_LEAK).numpy(), color=CB[1], ls="--",
            label=rf"$k_t$, leak $\alpha = {GATE_LEAK:g}$")
    marks = [s + n * tau for n in range(4)]
    ax.set_xticks(marks, ["$s$"] + [rf"$s{{+}}{n if n > 1 else ''}\tau$" for n in range(1, 4)])
    top = ax.secondary_xaxis("top")
    top.set_xlabel("time step $t$", fontsize=8)
    top.tick_params(labelsize=7)
    arrow = {"arrowstyle": "<->", "color": "0.2", "lw": 0.9, "shrinkA": 0, "shrinkB": 0}
    ax.annotate("", (s, 1.12), (s + r_on * tau, 1.12), arrowprops=arrow)
    ax.text(s + r_on * tau / 2, 1.16, r"$r_{on}\,\tau$ (open)", ha="center", va="bottom", fontsize=8)
    ax.annotate("", (s + tau, 0.55), (s + 2 * tau, 0.55), arrowprops=arrow)
    ax.text(s + 1.5 * tau, 0.59, r"$\tau$ (period)", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(0, t[-1])
    ax.set_ylim(-0.04, 1.38)
    ax.set_yticks([0, 0.5, 1])
    ax.set_xlabel(rf"time $t$ ($\tau$ = {tau:g}, $s$ = {s:g}, $r_{{on}}$ = {r_on:g})")
    ax.set_ylabel("openness $k_t$")
    _legend_right(ax, ax.get_legend_handles_labels()[0])


def draw_gradient_norms(fig, tables, smoothing, threshold):
    ax = fig.subplots()
    df = read_table(tables.dir / "grad_norms.csv")
    ax.set_xlabel("distance $T-k$ from the last input (time steps)")
    ax.set_ylabel(r"$\Vert\partial L/\partial h_k\Vert_2$")
    if df.empty:
        return _no_runs(ax)
    df = df.assign(model=df.model.str.upper())
    agg = mean_band(df, "distance", "grad_norm", ["model"], log=True)
    for i, model in enumerate(sorted(agg.model.unique(), key=lambda m: (m != "RNN", m))):
        _line(ax, agg[agg.model == model], "distance", MODEL_COLORS.get(model, CB[2 + i]),
              marker="o", label=model)
    ax.set_yscale("log")
    ax.set_xlim(left=0)
    _legend_right(ax, ax.get_legend_handles_labels()[0])
    length = int((df.k + df.distance).max())
    ax.set_title(f"{band_note(_seeds([df], ['model']), log=True)}; $T$ = {length} inputs, at "
                 "initialisation", fontsize=7.5, color="0.3")


def _text_figure(fig, tables, smoothing, threshold, by_temperature):
    """Loss and accuracy against step: training batches (smoothed) and the held-out tail."""
    curves, evals = tables(TEXT_STUDY, "curves"), tables(TEXT_STUDY, "evals")
    axes = fig.subplots(1, 2)
    for ax, label in zip(axes, ["loss (nats)", "accuracy"]):
        ax.set_ylabel(label)
    if curves.empty and evals.empty:
        return [(_no_runs(ax), _steps_axis(ax)) for ax in axes]
    temps = pd.concat([curves.get("temperature", pd.Series()), evals.get("temperature", pd.Series())])
    if by_temperature:
        colors = _ramp(temps, "magma", (0.1, 0.75))
    else:   # the reference run's training temperature (spec.reference_order)
        from rnnrepro.analysis.scorecard import reference_text_run

        near = reference_text_run(tables(TEXT_STUDY, "runs"))["temperature"]
        curves, evals = (df[df.temperature == near] if not df.empty else df for df in (curves, evals))
        colors = {near: None}
    for ax, y in zip(axes, ["loss", "accuracy"]):
        for split, df, ls, marker in [("train", smooth(curves, y, smoothing), "-", None),
                                      ("held-out", evals, "--", "o")]:
            if df.empty:
                continue
            for temp, agg in mean_band(df, "step", y, ["temperature"]).groupby("temperature"):
                c = colors[temp] or SPLIT_COLORS[split]
                _line(ax, agg, "step", c, ls=ls if by_temperature else "-", marker=marker)
        _steps_axis(ax)
    bpc = axes[0].secondary_yaxis("right", functions=(lambda v: v / math.log(2), lambda b: b * math.log(2)))
    bpc.set_ylabel("bits per character", fontsize=8)
    note = (f"{band_note(_seeds([curves, evals], ['temperature']))}; "
            f"training curves: rolling mean over {smoothing:,} steps")
    if by_temperature:
        handles = [Line2D([], [], color=c, label=f"$T$ = {t:g}") for t, c in colors.items()] + [
            Line2D([], [], color="0.35", label="training batches"),
            Line2D([], [], color="0.35", ls="--", marker="o", label="held-out tail")]
    else:
        final = "" if evals.empty else (
            f" (final: {evals.loc[evals.step == evals.step.max(), 'loss'].mean() / math.log(2):.2f}"
            " bits/char)")
        handles = [Line2D([], [], color=SPLIT_COLORS["train"], label="training batches"),
                   Line2D([], [], color=SPLIT_COLORS["held-out"], marker="o",
                          label=f"held-out tail{final}")]
        note = f"training temperature $T$ = {near:g}; {note}"
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), columnspacing=1.5,
               handlelength=2.0)
    fig.suptitle(note, x=0.01, ha="left", fontsize=7.5, color="0.3")


def _setting(r):
    init = "" if r.init == "default" else f", init {r.init} sd {r.init_std:g}"
    return (f"{r.model.upper()}, {r.optimizer}, lr {r.lr:g}, $T$ = {int(r.input_length)}, "
            f"{int(r.steps):,} steps{init}")


def draw_collapse(fig, tables, smoothing, threshold):
    """Per setting with a lost run: held-out accuracy and gradient norm of its lost runs."""
    runs = [r for s in tables.studies if not (r := tables(s, "runs")).empty]
    lost = [r[r["outcome"] == "lost"] for r in runs]
    lost = pd.concat(lost).drop_duplicates("run_id") if lost else pd.DataFrame()
    if lost.empty:
        ax = fig.subplots()
        _no_runs(ax, "no run reached the criterion and then lost it" if runs else "no runs")
        return
    evals = pd.concat([tables(s, "evals") for s in tables.studies]).drop_duplicates(["run_id", "step"])
    curves = pd.concat([tables(s, "curves") for s in tables.studies]).drop_duplicates(["run_id", "step"])
    key = ["model", "optimizer", "lr", "input_length", "steps", "init", "init_std"]
    settings = list(lost.groupby(key, sort=True))
    cols = 1 if len(settings) == 1 else 2
    rows = math.ceil(len(settings) / cols)
    fig.set_figheight(min(fig.get_figheight(), 0.6 + 2.3 * rows))  # the registry's height: at most
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    colors = sns.color_palette("colorblind", 10)  # a seed has one colour in every panel
    for ax in axes[len(settings):]:
        ax.set_visible(False)
    legend = {}
    for ax, (_, group) in zip(axes, settings):
        grad_ax = ax.twinx()
        for r in group.sort_values("seed").itertuples():
            c = colors[int(r.seed) % len(colors)]
            e = evals[evals["run_id"] == r.run_id]
            g = curves[curves["run_id"] == r.run_id]
            if len(g) > 4000:  # thinned, the spikes kept: the max of each stretch
                g = g.groupby(g["step"] // math.ceil(g["step"].max() / 2000)).agg(
                    step=("step", "max"), grad_norm=("grad_norm", "max"))
            grad_ax.plot(g["step"], g["grad_norm"], color=c, lw=0.4, alpha=0.55)
            legend[f"seed {int(r.seed)}"] = ax.plot(e["step"], e["accuracy"], color=c, lw=1.3)[0]
            at = e[e["step"] == r.lost_step]["accuracy"]
            ax.plot([r.lost_step], at, marker="x", color="k", ms=6, mew=1.5, ls="none")
        clip = group["max_norm"].iloc[0]
        legend[f"clipping threshold {clip:g} (right axis)"] = grad_ax.axhline(
            clip, color="0.3", ls="--", lw=0.9)
        grad_ax.set_yscale("log")
        grad_ax.set_ylabel("gradient norm", fontsize=7.5)
        grad_ax.tick_params(labelsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.set_zorder(grad_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        _threshold(ax, threshold)
        ax.set_ylabel("held-out accuracy")
        ax.set_title(_setting(group.iloc[0]), fontsize=7.5)
        _steps_axis(ax)
    handles, labels = axes[0].get_legend_handles_labels()  # the convergence threshold
    legend.update(zip(labels, handles))
    legend["where the run was lost"] = Line2D([], [], marker="x", color="k", ms=6, mew=1.5, ls="none")
    seeds = sorted((k for k in legend if k.startswith("seed ")), key=lambda k: int(k.split()[1]))
    order = seeds + [k for k in legend if not k.startswith("seed ")]
    fig.legend([legend[k] for k in order], order, loc="outside lower center", ncol=min(len(order), 4),
               fontsize=7)


def draw_text_overfit(fig, tables, smoothing, threshold):
    """Training and held-out loss of every text run on one axis, a panel per temperature; the
    lowest held-out loss marked on each temperature's first seed (the report's run), other
    seeds drawn fainter."""
    curves, evals, runs = (tables(TEXT_STUDY, t) for t in ("curves", "evals", "runs"))
    if runs.empty:
        ax = fig.subplots()
        return _no_runs(ax)
    temps = sorted(runs["temperature"].unique())
    axes = fig.subplots(1, len(temps), sharey=True, squeeze=False).ravel()
    for ax, T in zip(axes, temps):
        for i, r in enumerate(runs[runs["temperature"] == T].sort_values("seed").itertuples()):
            train = smooth(curves[curves["run_id"] == r.run_id], "loss", smoothing)
            held = evals[evals["run_id"] == r.run_id]
            faint = {"alpha": 0.35, "zorder": 1} if i else {"zorder": 3}  # the first on top
            ax.plot(train["step"], train["loss"], color=SPLIT_COLORS["train"], lw=1.0, **faint)
            ax.plot(held["step"], held["loss"], color=SPLIT_COLORS["held-out"], lw=1.2, marker="o",
                    ms=2.5, **faint)
            if i:
                continue
            ax.axvline(r.eval_lowest_loss_step, color="0.3", ls=":", lw=1.0)
            left = r.eval_lowest_loss_step > 0.6 * r.steps  # keep the label inside the panel
            ax.annotate(f"lowest {r.eval_lowest_loss:.2f}\nat {int(r.eval_lowest_loss_step):,}",
                        (r.eval_lowest_loss_step, r.eval_lowest_loss), xytext=(-4 if left else 4, 16),
                        textcoords="offset points", fontsize=6.5, color="0.25",
                        ha="right" if left else "left")
        ax.set_title(f"$T$ = {T:g}", fontsize=8)
        _steps_axis(ax)
    axes[0].set_ylabel("loss (nats)")
    handles = [Line2D([], [], color=SPLIT_COLORS["train"], label="training batches"),
               Line2D([], [], color=SPLIT_COLORS["held-out"], marker="o", ms=2.5,
                      label="held-out tail"),
               Line2D([], [], color="0.3", ls=":", label="lowest held-out loss")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    fig.suptitle(f"training loss: rolling mean over {smoothing:,} steps", x=0.01, ha="left",
                 fontsize=7.5, color="0.3")


def draw_text_curves(fig, tables, smoothing, threshold):
    _text_figure(fig, tables, smoothing, threshold, by_temperature=False)


def draw_text_temperature(fig, tables, smoothing, threshold):
    _text_figure(fig, tables, smoothing, threshold, by_temperature=True)


def drawing_of(name):
    """The function that draws `name`: draw_<name> here, or in phased_drawings.py (Section 2)."""
    from rnnrepro.report import phased_drawings

    found = globals().get(f"draw_{name}") or getattr(phased_drawings, f"draw_{name}", None)
    if found is None:
        raise KeyError(f"no drawing {name!r} (draw_{name} in drawings.py or phased_drawings.py)")
    return found


def draw(name, tables_dir, smoothing, threshold, present=None):
    """Figure `name` of FIGURES from the tables under tables_dir; `present`: the figure's
    studies to draw (default: all; one with no tables is drawn as "no runs")."""
    if name not in FIGURES:
        raise KeyError(f"no figure {name!r}; known: {', '.join(FIGURES)}")
    spec = FIGURES[name]
    with style():
        fig = Figure(figsize=(WIDTH, spec["height"]), layout="constrained")
        drawing = drawing_of(spec["drawing"])
        studies = spec["studies"]
        drawing(fig, _Tables(tables_dir, studies, studies if present is None else present),
                smoothing, threshold)
    return fig


def save(fig, paths):
    """Write the figure to each path, in the format its suffix names (pdf, png), atomically."""
    with style():
        for path in [paths] if isinstance(paths, (str, Path)) else paths:
            fmt = Path(path).suffix.lstrip(".").lower()
            meta = {"CreationDate": None} if fmt == "pdf" else {}
            atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=PNG_DPI, metadata=meta), mode="wb")
