"""Section 2's figures: the memory studies on palindromes, their length extrapolation, the
frequency task under two samplings, and the timing parameters over training. Drawn in the
report's style with drawings.py's helpers; drawings.draw finds them here by name."""

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from rnnrepro.analysis.outcomes import CHANCE_ACCURACY
from rnnrepro.analysis.phased import VARIANTS
from rnnrepro.config import roles as R
from rnnrepro.report.drawings import (
    CB,
    _legend_right,
    _line,
    _no_runs,
    _seeds,
    _spacer,
    _steps_axis,
    _threshold,
    band_note,
    mean_band,
    read_table,
)

VARIANT_COLORS = {R.LSTM_MEMORY: CB[1], R.PHASED_SHORT: CB[2], R.PHASED_LONG: CB[4]}
FREQUENCY_COLORS = {"lstm": CB[1], "phased": CB[2]}
SAMPLING_NAMES = {"regular": "regular samples (every 1 ms)", "async": "asynchronous samples",
                  "fine": "fine samples (every 0.1 ms)"}


def _note(fig, text):
    fig.suptitle(text, fontsize=7.5, color="0.3", x=0.01, ha="left")


def draw_phased_memory(fig, tables, smoothing, threshold):
    """Held-out accuracy against step, one panel per input length, one line per model."""
    frames = {s: tables(s, "evals") for s in tables.studies}
    frames = {s: df for s, df in frames.items() if not df.empty}
    if not frames:
        return _no_runs(fig.subplots())
    lengths = sorted(set(pd.concat([df.input_length for df in frames.values()])))
    axes = np.atleast_1d(fig.subplots(1, len(lengths), sharey=True))
    for ax, length in zip(axes, lengths):
        for study, df in frames.items():
            part = df[df.input_length == length]
            if not part.empty:
                _line(ax, mean_band(part, "step", "accuracy"), "step", VARIANT_COLORS[study])
        _threshold(ax, threshold)
        ax.axhline(CHANCE_ACCURACY, color="0.6", ls="--", lw=0.8)
        ax.set_title(f"input length $T$ = {length}")
        ax.set_ylim(0, 1.03)
        _steps_axis(ax)
    axes[0].set_ylabel("held-out accuracy")
    handles = [Line2D([], [], color=VARIANT_COLORS[s], label=VARIANTS[s]) for s in frames]
    handles += [_spacer(), Line2D([], [], color="0.25", ls=":", label=f"criterion {threshold:g}"),
                Line2D([], [], color="0.6", ls="--", label="chance (0.1)")]
    _legend_right(axes[-1], handles)
    _note(fig, band_note(_seeds(frames.values(), ["study", "input_length"])))


def draw_extrapolation(fig, tables, smoothing, threshold):
    """Held-out accuracy against the input length scored, for models trained at the first."""
    ax = fig.subplots()
    df = read_table(tables.dir / "extrapolation.csv")
    ax.set_xlabel("input length $T$ scored")
    ax.set_ylabel("held-out accuracy")
    if df.empty:
        return _no_runs(ax)
    for study, part in df.groupby("study", sort=False):
        agg = mean_band(part, "length", "accuracy")
        _line(ax, agg, "length", VARIANT_COLORS.get(study, CB[0]), marker="o",
              label=VARIANTS.get(study, study))
    ax.axhline(CHANCE_ACCURACY, color="0.6", ls="--", lw=0.8, label="chance (0.1)")
    lengths = sorted(df.length.unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(x) for x in lengths])
    ax.minorticks_off()
    ax.set_ylim(0, 1.03)
    _legend_right(ax, ax.get_legend_handles_labels()[0])
    trained = int(df.train_length.iloc[0])
    ax.set_title(f"{band_note(_seeds([df], ['study']))}; trained at $T$ = {trained}",
                 fontsize=7.5, color="0.3")


def draw_frequency(fig, tables, smoothing, threshold):
    """The frequency task's held-out accuracy against step, one panel per sampling."""
    df = tables(R.FREQUENCY_STUDY, "evals")
    if df.empty:
        return _no_runs(fig.subplots())
    samplings = [s for s in SAMPLING_NAMES if s in set(df.sampling)]
    axes = np.atleast_1d(fig.subplots(1, len(samplings), sharey=True))
    for ax, sampling in zip(axes, samplings):
        for model, part in df[df.sampling == sampling].groupby("model"):
            _line(ax, mean_band(part, "step", "accuracy"), "step", FREQUENCY_COLORS[model],
                  label={"lstm": "LSTM (time as input)", "phased": "phased LSTM"}[model])
        ax.axhline(0.5, color="0.6", ls="--", lw=0.8)
        ax.set_title(SAMPLING_NAMES[sampling])
        ax.set_ylim(0.4, 1.02)
        _steps_axis(ax)
    axes[0].set_ylabel("held-out accuracy")
    handles = axes[0].get_legend_handles_labels()[0]
    _legend_right(axes[-1], handles + [Line2D([], [], color="0.6", ls="--", label="chance (0.5)")])
    _note(fig, band_note(_seeds([df], ["model", "sampling"])))


def draw_timing(fig, tables, smoothing, threshold):
    """The learning study over training: median period τ, r_on and the share of open gates."""
    df = tables(R.LEARN_STUDY, "evals")
    if df.empty:
        return _no_runs(fig.subplots())
    df = df.assign(learn=df.learn.fillna("none"))
    axes = fig.subplots(1, 3)
    learned = sorted(df.learn.unique(), key=lambda w: (w != "none", len(w), w))
    colors = {w: CB[(0, 2, 3, 4, 5, 6, 7, 8, 9)[i % 9]] for i, w in enumerate(learned)}
    for ax, (column, label) in zip(axes, [("tau_median", "median period τ (ms)"),
                                          ("r_on", "$r_{on}$"),
                                          ("open_share", "share of open gates")]):
        for learn, part in df.groupby("learn"):
            _line(ax, mean_band(part, "step", column), "step", colors[learn],
                  label="learned: " + learn)
        ax.set_ylabel(label)
        _steps_axis(ax)
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    sampling = SAMPLING_NAMES.get(df.sampling.iloc[0], df.sampling.iloc[0]).split(" (")[0]
    _note(fig, band_note(_seeds([df], ["learn"])) + f"; {sampling}")
