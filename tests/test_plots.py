"""The report's figures: every one draws from small synthetic tables, saves as PDF and PNG,
and shows what it should (one line per input length, the gate function, the smoothing window,
"no runs" for a missing study)."""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnrepro.analysis.outcomes import classify
from rnnrepro.analysis.scorecard import init_scorecard
from rnnrepro.report.drawings import GATE, GATE_LEAK, PNG_DPI, WIDTH, band_note, mean_band, save, smooth
from rnnrepro.report.drawings import draw as _plots_draw
from rnnrepro.report.registry import BAND_TEXT, FIGURES

LENGTHS, SEEDS = (4, 6), (0, 1)
# role -> (lengths, seeds, steps factor, lr): the studies of the test config, scaled down
PALINDROME = {
    "rnn_rmsprop": (LENGTHS, SEEDS, 1, 1e-3), "rnn_adam": (LENGTHS, SEEDS, 1, 1e-3),
    "rnn_adam_long": (LENGTHS[-1:], SEEDS, 2, 1e-3), "rnn_adam_40k": (LENGTHS[-1:], (0,), 4, 1e-3),
    "lstm_rmsprop": (LENGTHS, SEEDS, 1, 1e-3), "lstm_adam": (LENGTHS, SEEDS, 1, 1e-3),
    "lstm_adam_lr01": (LENGTHS[-1:], SEEDS, 1, 1e-2),
}
SECTION2 = {"lstm_memory", "phased_short", "phased_long", "frequency_sampling", "frequency_learn"}
STUDIES = set(PALINDROME) | {"text_temperature", "init_study", "init_lr01"} | SECTION2
INITS = (("default", 0.01), ("normal", 1.0), ("normal", 0.001))


def _write(root, study, **tables):
    folder = root / "studies" / study
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)


def fabricate(root, steps=300, log_every=1, eval_every=50, temperatures=(0.5, 1.0, 2.0),
              palindrome=PALINDROME, text_steps=None, text_eval_every=40, seed=0):
    """Write runs/curves/evals tables shaped like the pipeline's (SPEC §4 studies, decaying
    losses with noise) and grad_norms.csv under `root`; returns root."""
    rng = np.random.default_rng(seed)
    for role, (lengths, seeds, factor, lr) in palindrome.items():
        model, optimizer = role.split("_")[:2]
        runs, curves, evals = [], [], []
        for length in lengths:
            for s in seeds:
                n = steps * factor
                key = dict(study=role, run_id=f"{role}-len{length}-seed{s}", model=model,
                           optimizer=optimizer, input_length=length, lr=lr, steps=n, init="default",
                           init_std=0.01, seed=s)
                rate = 3 / (steps * length / 4) * (1 + 0.2 * s)
                t = np.arange(log_every, n + 1, log_every)
                loss = 2.3 * np.exp(-rate * t) * rng.lognormal(0, 0.2, len(t)) + 1e-3
                curves += [key | dict(step=a, loss=b, accuracy=1 - b / 2.6, grad_norm=1.0)
                           for a, b in zip(t, loss)]
                te = np.arange(0, n + 1, eval_every)
                acc = 1 - 0.9 * np.exp(-rate * te)
                if role == "rnn_adam_40k":  # learned, then lost: a collapse for fig_collapse
                    acc = np.where(te > 0.75 * n, 0.3, acc)
                run_evals = [key | dict(step=a, loss=2.3 * (1 - b), accuracy=b, saturation=0.1,
                                        w_h_norm=2.0) for a, b in zip(te, acc)]
                evals += run_evals
                outcome = classify(pd.DataFrame(run_evals), pd.DataFrame(curves[-len(t):]), 0.99)
                runs.append(key | outcome | dict(
                    kind="palindrome", eval_final_accuracy=acc[-1], eval_best_accuracy=acc.max(),
                    log_every=log_every, max_norm=10.0, outcome_threshold=0.99))
        _write(root, role, runs=runs, curves=curves, evals=evals)
    runs, curves, evals = [], [], []
    for temp in temperatures:
        n = text_steps or steps
        key = dict(study="text_temperature", run_id=f"text-T{temp:g}", temperature=temp,
                   optimizer="rmsprop", lr=2e-3, steps=n, seed=0)
        t = np.arange(10, n + 1, 10)
        loss = 1.3 + 3 * np.exp(-t / (n / 5 * temp)) + rng.normal(0, 0.05, len(t))
        curves += [key | dict(step=a, loss=b, accuracy=0.7 - b / 10, grad_norm=1.0) for a, b in zip(t, loss)]
        te = np.arange(0, n + 1, text_eval_every)
        loss = 1.5 + 3 * np.exp(-te / (n / 5 * temp)) + 0.3 * (te / n) ** 2  # it overfits
        evals += [key | dict(step=a, loss=b, accuracy=0.7 - b / 10, bpc=b / math.log(2))
                  for a, b in zip(te, loss)]
        runs.append(key | dict(kind="text", eval_final_accuracy=0.5,
                               eval_lowest_loss=loss.min(), eval_lowest_loss_step=te[loss.argmin()]))
    _write(root, "text_temperature", runs=runs, curves=curves, evals=evals)
    # the initialisation study: the Adam runs again under each init, accuracy scaled down
    for study, roles, inits in (("init_study", ("rnn_adam", "lstm_adam"), INITS),
                                ("init_lr01", ("lstm_adam_lr01",), INITS[1:])):
        if not all(role in palindrome for role in roles):
            continue
        tables = {}
        for name in ("runs", "curves", "evals"):
            parts = []
            for role in roles:
                df = pd.read_csv(root / "studies" / role / f"{name}.csv")
                for i, (init, std) in enumerate(inits):
                    part = df.assign(study=study, init=init, init_std=std,
                                     run_id=df.run_id + f"-{init}{std}")
                    for col in ("eval_final_accuracy", "eval_best_accuracy", "accuracy"):
                        if col in part and name != "curves":
                            part[col] = part[col] / (1 + i)
                    parts.append(part)
            tables[name] = pd.concat(parts).to_dict("records")
        _write(root, study, **tables)
    if (root / "studies" / "init_study").is_dir():  # what the scorecard rule writes for fig11
        init_scorecard(root, 0.99).to_csv(root / "scorecard_init.csv",
                                                                     index=False)
    fabricate_section2(root, rng, steps, eval_every)
    k = np.arange(1, 21)
    pd.DataFrame([dict(model=m, seed=s, k=int(i), distance=int(20 - i), grad_norm=float(g))
                  for m, decay in [("rnn", 0.5), ("lstm", 0.7), ("phased", 0.95)] for s in range(3)
                  for i, g in zip(k, decay ** (20 - k) * rng.lognormal(0, 0.3, len(k)))]
                 ).to_csv(root / "grad_norms.csv", index=False)
    return root


def fabricate_section2(root, rng, steps, eval_every, lengths=(4, 8, 16), seeds=(0, 1)):
    """Section 2's tables: the memory studies (with the gate's measures for the phased ones),
    the extrapolation table, the frequency task under two samplings and the timing study."""
    te = np.arange(0, steps + 1, eval_every)
    gate = dict(open_share=0.05, first_open=0.04, tau_median=6.0, r_on=0.05)
    extrapolation = []
    for study, model, speed in (("lstm_memory", "lstm", 1.0), ("phased_short", "phased", 1.5),
                                ("phased_long", "phased", 0.7)):
        runs, evals = [], []
        for length in lengths:
            for s in seeds:
                key = dict(study=study, run_id=f"{study}-{length}-{s}", model=model, optimizer="adam",
                           input_length=length, lr=1e-3, steps=steps, seed=s)
                acc = 0.1 + 0.9 * (1 - np.exp(-speed * te / (steps * length / 8)))
                run_evals = [key | dict(step=a, loss=2.3 * (1 - b), accuracy=b, saturation=0.1,
                                        w_h_norm=2.0) | (gate if model == "phased" else {})
                             for a, b in zip(te, acc)]
                evals += run_evals
                runs.append(key | classify(pd.DataFrame(run_evals), pd.DataFrame(
                    {"step": te, "grad_norm": 1.0}), 0.99) | dict(
                    kind="palindrome", hidden=32, batch=16, eval_final_accuracy=acc[-1],
                    eval_best_accuracy=acc.max(), outcome_threshold=0.99))
                if length == lengths[1]:
                    extrapolation += [dict(study=study, run_id=key["run_id"], model=model, seed=s,
                                           train_length=length, length=x, loss=1.0,
                                           accuracy=max(0.1, acc[-1] * (length / x) ** (1 / speed)))
                                      for x in (length, 2 * length, 4 * length)]
        _write(root, study, runs=runs, curves=evals, evals=evals)
    pd.DataFrame(extrapolation).to_csv(root / "extrapolation.csv", index=False)
    sampling = [(m, sm, "tau, s, r_on" if m == "phased" else "no gate")
                for m in ("lstm", "phased") for sm in ("regular", "async")]
    learning = [("phased", "async", w) for w in ("none", "tau, s", "tau, s, r_on")]
    for study, variants in (("frequency_sampling", sampling), ("frequency_learn", learning)):
        runs, evals = [], []
        for model, sampling, learn in variants:
            for s in seeds:
                key = dict(study=study, run_id=f"{study}-{model}-{sampling}-{learn}-{s}", model=model,
                           sampling=sampling, learn=learn, hidden=16, steps=steps, seed=s)
                acc = 0.5 + 0.45 * (1 - np.exp(-te / steps * (3 if model == "phased" else 1)))
                tau = 6.0 + te / steps * ("tau" in learn)
                r_on = 0.05 + 0.02 * te / steps * ("r_on" in learn)
                evals += [key | dict(step=a, loss=1 - b, accuracy=b, open_share=0.05, first_open=0.05,
                                     tau_median=t, r_on=r) for a, b, t, r in zip(te, acc, tau, r_on)]
                runs.append(key | dict(kind="frequency", batch=32, lr=1e-3, eval_size=500,
                                       eval_final_accuracy=acc[-1], tau_initial=6.0,
                                       tau_final=tau[-1], r_on_initial=0.05, r_on_final=r_on[-1]))
        _write(root, study, runs=runs, curves=evals, evals=evals)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return fabricate(tmp_path_factory.mktemp("tables"))


def draw(name, tables, present, smoothing=100, threshold=0.99):  # the schema's defaults
    return _plots_draw(name, tables, smoothing, threshold, present)


def _draw(name, tables, studies=None, **kw):
    return draw(name, tables, [s for s in FIGURES[name]["studies"] if s in (studies or STUDIES)], **kw)


def _texts(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_draws_and_saves(name, tables, tmp_path):
    fig = _draw(name, tables)
    assert fig.get_figwidth() == pytest.approx(WIDTH)
    assert not any("no runs" in t for t in _texts(fig))
    pdf, png = tmp_path / "out" / f"{name}.pdf", tmp_path / "out" / f"{name}.png"
    save(fig, [pdf, png])
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert int.from_bytes(head[16:20], "big") == round(WIDTH * PNG_DPI)   # width in pixels
    assert sorted(p.name for p in pdf.parent.iterdir()) == sorted([pdf.name, png.name])  # no temp files


def test_loss_figure_one_line_per_length_and_states_smoothing(tables):
    fig = _draw("fig01_rnn_rmsprop_loss", tables, smoothing=100)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(n) for n in LENGTHS]
    assert len(ax.get_lines()) == len(LENGTHS)
    assert "palindrome length" in ax.get_legend().get_title().get_text()
    assert "rolling mean over 100 steps" in ax.get_title(loc="left")
    assert "2 seeds" in ax.get_title(loc="left")
    assert ax.get_yscale() == "log"


def test_smoothing_window_counts_steps_not_rows():
    df = pd.DataFrame({"run_id": "a", "step": np.arange(10, 1001, 10), "loss": np.arange(100.0)})
    out = smooth(df, "loss", 100)   # logged every 10 steps: 10 rows
    assert out.loss.tolist() == df.loss.rolling(10, min_periods=1).mean().tolist()
    assert smooth(df, "loss", 1).loss.tolist() == df.loss.tolist()


def test_mean_band_over_seeds_linear_and_log():
    df = pd.DataFrame({"step": [1, 1], "loss": [1.0, 100.0], "seed": [0, 1]})
    lin = mean_band(df, "step", "loss").iloc[0]
    assert lin["mean"] == 50.5 and lin["hi"] - lin["mean"] == pytest.approx(np.std([1, 100], ddof=1))
    geo = mean_band(df, "step", "loss", log=True).iloc[0]
    sd = np.std([0, 2], ddof=1)
    assert geo["mean"] == pytest.approx(10) and geo["hi"] == pytest.approx(10 * 10 ** sd)
    assert geo["lo"] == pytest.approx(10 / 10 ** sd) and geo["n"] == 2
    assert "{" not in BAND_TEXT and "standard deviation" in BAND_TEXT   # the report's prose
    assert band_note((3, 3)) == "mean over 3 seeds ± 1 s.d." and band_note((1, 1)) == "one seed (no band)"


def test_variant_runs_are_dashed_and_labelled(tables):
    fig = _draw("fig06_lstm_adam_loss", tables)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "lr 0.01 ($T$ = 6)" in labels and "lr 0.001" in labels
    assert sorted({line.get_linestyle() for line in ax.get_lines()}) == ["-", "--"]
    fig = _draw("fig03_rnn_adam_long_loss", tables)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "600 steps" in labels and "1,200 steps" in labels


def test_time_gate_figure_draws_the_models_gate():
    from rnnrepro.models.phased import time_gate

    fig = draw("fig08_time_gate", "/nonexistent", {})
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    closed, leaky = lines[r"$k_t$, $\alpha = 0$"], lines[rf"$k_t$, leak $\alpha = {GATE_LEAK:g}$"]
    t = closed.get_xdata()
    np.testing.assert_allclose(closed.get_ydata(), time_gate(t, **GATE).numpy())
    np.testing.assert_allclose(leaky.get_ydata(), time_gate(t, **GATE, alpha=GATE_LEAK).numpy())
    assert t[-1] - t[0] >= 3 * GATE["tau"]
    ticks = [lab.get_text() for lab in ax.get_xticklabels()]
    assert ticks[:2] == ["$s$", r"$s{+}\tau$"]
    assert any("r_{on}" in t for t in _texts(fig)) and any("period" in t for t in _texts(fig))


def test_accuracy_figure_marks_threshold(tables):
    fig = _draw("fig04_rnn_accuracy", tables, threshold=0.95)
    ys = [line.get_ydata()[0] for ax in fig.axes for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert ys == [0.95] * 3     # panel (a) and both optimizer panels of (b)
    assert len(fig.axes) == 3


def test_missing_or_empty_study_draws_a_no_runs_panel(tables, tmp_path):
    for study in {s for f in FIGURES.values() for s in f["studies"]}:  # every study, no rows
        empty = tmp_path / "studies" / study
        empty.mkdir(parents=True)
        (empty / "runs.csv").write_text("study,run_id,seed,eval_final_accuracy\n")
        for name in ("curves", "evals"):
            (empty / f"{name}.csv").write_text("study,run_id,seed,step,loss,accuracy\n")
    for name in FIGURES:
        if not FIGURES[name]["studies"] and name != "fig_gradient_norms":
            continue
        fig = draw(name, tmp_path, FIGURES[name]["studies"])
        assert any(t == "no runs" for t in _texts(fig)), name
        save(fig, [tmp_path / f"{name}.png"])
    fig = draw("fig04_rnn_accuracy", tables, ["rnn_adam"])   # (b): RNN with Adam only
    assert [[t.get_text() for t in ax.texts] for ax in fig.axes] == [[], ["no runs"], []]


def test_text_figure_uses_temperature_nearest_one(tmp_path):
    root = fabricate(tmp_path, steps=200, temperatures=(0.5, 0.9, 2.0), palindrome={})
    fig = draw("fig09_text_curves", root, ["text_temperature"], smoothing=50)
    assert "training temperature $T$ = 0.9" in fig.get_suptitle()
    assert "rolling mean over 50 steps" in fig.get_suptitle()
    loss_ax = fig.axes[0]
    assert len(loss_ax.get_lines()) == 2     # training and held-out for the one run
    fig = draw("fig10_text_temperature", root, ["text_temperature"])
    assert len(fig.axes[0].get_lines()) == 6
    assert [t.get_text() for t in fig.legends[0].get_texts()][:3] == ["$T$ = 0.5", "$T$ = 0.9", "$T$ = 2"]


def test_each_figure_is_registered_once_with_a_drawing_plots_has():
    """figures.FIGURES is the one registry: its drawing names a draw_<drawing> (plots, or
    phased_drawings for Section 2), its
    height sizes the figure; plots keeps no list of figure names of its own."""
    import rnnrepro.report.drawings as plots

    for name, spec in FIGURES.items():
        assert callable(plots.drawing_of(spec["drawing"])), name
        assert spec["height"] > 0 and spec["caption"], name
    source = Path(plots.__file__).read_text()
    assert not [n for n in FIGURES if f'"{n}"' in source]  # no figure name spelt in plots.py


def test_the_collapse_figure_shows_the_lost_runs_with_the_clipping_threshold(tables):
    fig = _draw("fig_collapse", tables)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_ylabel() == "held-out accuracy"]
    assert len(panels) == 1  # one setting lost a run: rnn_adam_40k
    title = panels[0].get_title(loc="left")
    assert "RNN, adam" in title and "$T$ = 6" in title
    texts = _texts(fig)
    assert any(t.startswith("clipping threshold 10") for t in texts)
    assert any(t == "seed 0" for t in texts)


def test_the_collapse_figure_says_when_no_run_was_lost(tmp_path):
    root = fabricate(tmp_path, palindrome={k: v for k, v in PALINDROME.items() if k != "rnn_adam_40k"})
    fig = _draw("fig_collapse", root)
    assert "no run reached the criterion and then lost it" in _texts(fig)


def test_the_overfit_figure_marks_each_runs_lowest_held_out_loss(tables):
    fig = _draw("fig_text_overfit", tables)
    assert len(fig.axes) == 3  # one panel per training temperature
    notes = [t for t in _texts(fig) if re.fullmatch(r"lowest \d+\.\d\d\nat [\d,]+", t)]
    assert len(notes) == 3  # one note per run, at its lowest held-out loss
