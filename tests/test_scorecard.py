"""Verdicts are computed from the tables: synthetic tables with known outcomes."""

import json

import pandas as pd
import pytest

from rnnrepro.analysis.scorecard import Tables, init_scorecard, scorecard, temperature_claim, verdict
from rnnrepro.analysis.statistics import MIN_PAIRS


def write_study(root, name, rows, evals=None):
    d = root / "studies" / name
    d.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(d / "runs.csv", index=False)
    evals = evals if evals is not None else [
        {**{k: r[k] for k in ("run_id", "model", "seed", "input_length", "init", "init_std")},
         "step": s, "accuracy": r["eval_final_accuracy"] * s / 100} for r in rows for s in (0, 50, 100)]
    pd.DataFrame(evals).to_csv(d / "evals.csv", index=False)


def run(model, length, seed, acc, init="default", std=0.01, outcome=None, **kw):
    """A run row as aggregate writes it, its outcome read at a threshold of 0.99."""
    return {"run_id": f"{model}-{length}-{seed}-{init}{std}", "model": model, "input_length": length,
            "seed": seed, "eval_final_accuracy": acc, "eval_best_accuracy": acc, "init": init,
            "init_std": std, "hidden": 128, "cell_parameters": 66560, "cell_formula": 66560,
            "parameters": 67850, "outcome": outcome or ("kept" if acc >= 0.99 else "never"),
            "lost_step": 700 if outcome == "lost" else None, "outcome_threshold": 0.99, **kw}


def original_pattern(model, length):
    return length <= (7 if model == "rnn" else 9)


@pytest.fixture
def tables(tmp_path):
    # seed 0 follows the original's pattern exactly, seed 1 converges everywhere
    for model in ("rnn", "lstm"):
        write_study(tmp_path, f"{model}_adam", [
            run(model, L, seed, 1.0 if (seed == 1 or original_pattern(model, L)) else 0.3)
            for L in range(5, 11) for seed in (0, 1)])
    write_study(tmp_path, "lstm_adam_lr01", [run("lstm", 10, s, 1.0) for s in (0, 1)])
    (tmp_path / "corpus_stats.json").write_text(json.dumps({"characters": 540_241, "distinct": 87}))
    return tmp_path


def test_verdict_words():
    assert verdict({0: True, 1: True}) == ("held", 2, 2)
    assert verdict({0: True, 1: False}) == ("unresolved", 1, 2)  # 1/2: Wilson 9-91 %
    assert verdict({0: False}) == ("not held", 0, 1)
    assert verdict({}) == ("not run", 0, 0)
    assert verdict({0: None}) == ("not run", 0, 0)


def test_convergence_claims_are_judged_seed_by_seed(tables):
    card = scorecard(tables, 0.99).set_index("claim")
    assert card.loc[1, "verdict"] == "unresolved" and card.loc[1, "held"] == 1
    assert card.loc[1, "interval_of"] == "share of seeds"
    interval = (card.loc[1, "interval_lo"], card.loc[1, "interval_hi"])
    assert interval == pytest.approx((0.0945, 0.9055), abs=1e-4)
    assert card.loc[5, "verdict"] == "unresolved"
    assert "10: 1/2 [9-91%]" in card.loc[1, "measured"]
    assert card.loc[2, "verdict"] == "not run"  # no long runs in these tables
    assert card.loc[7, "verdict"] == "held" and card.loc[11, "verdict"] == "held"
    assert card.loc[4, "verdict"] == "unresolved"  # accuracy falls with length for seed 0 only


def test_outcomes_read_at_another_threshold_are_refused(tables):
    from rnnrepro.files import BadFile

    with pytest.raises(BadFile, match="read at a convergence threshold of 0.99.*judges at 0.2"):
        scorecard(tables, 0.2)


def test_a_run_that_learned_and_lost_the_task_is_not_a_run_that_cannot_learn(tmp_path):
    """Claim 2 expects length 10 to fail: a seed that reached the criterion and lost it
    does not meet that expectation, nor does it converge; the measured text names it."""
    write_study(tmp_path, "rnn_adam_40k", [run("rnn", 10, 0, 0.2), run("rnn", 10, 1, 0.3, outcome="lost"),
                                          run("rnn", 10, 2, 0.25, outcome="lost")])
    card = scorecard(tmp_path, 0.99).set_index("claim")
    assert card.loc[2, "held"] == 1 and card.loc[2, "judged"] == 3
    assert card.loc[2, "verdict"] == "unresolved"
    assert "10: 0/3 [0-56%], 2 lost (at step 700, 700)" in card.loc[2, "measured"]


def test_views_select_rows_of_another_study(tmp_path):
    write_study(tmp_path, "init_study", [run(m, L, 0, 1.0 if i == "default" else 0.1, init=i, std=s)
                                         for m in ("rnn", "lstm") for L in (5, 10)
                                         for i, s in (("default", 0.01), ("normal", 1.0))])
    t = Tables(tmp_path, views={"rnn_adam": ("init_study", {"model": "rnn", "init": "normal"})})
    rows = t.study("rnn_adam")
    assert set(rows.model) == {"rnn"} and set(rows.init) == {"normal"} and len(rows) == 2
    card = init_scorecard(tmp_path, 0.99)
    assert set(card.label) == {"default U(±1/√n)", "N(0, sd 1)"}
    normal = card[card.init == "normal"].set_index("claim")
    assert "5: 0/1" in normal.loc[1, "measured"] and "10: 0/1" in normal.loc[1, "measured"]
    # the pattern: RNN 5 converges, 10 not; LSTM 5 converges, 10 not (lr 0.01 run absent)
    default = card[card.init == "default"].iloc[0]
    assert default.pattern_match == pytest.approx(2 / 4)
    assert card[card.init == "normal"].iloc[0].pattern_match == pytest.approx(2 / 4)


def test_the_palindrome_tables_first_step_is_at_the_configured_threshold(tmp_path):
    """The report's "steps to converge" is the first evaluated step at
    report.convergence_threshold, from evals.csv: its column label states that threshold."""
    from rnnrepro.report.context import palindrome_rows

    rows = [run("rnn", 5, seed, 1.0, optimizer="adam", lr=1e-3, steps=300) | {"outcome_threshold": None}
            for seed in (0, 1)]  # no threshold recorded: the step is read from evals.csv alone
    curve = {0: 0.5, 100: 0.96, 200: 0.995, 300: 1.0}  # 0.95 at step 100, 0.99 at step 200
    evals = [{"run_id": r["run_id"], "step": s, "accuracy": a} for r in rows for s, a in curve.items()]
    write_study(tmp_path, "rnn_adam", rows, evals)
    (strict,) = palindrome_rows(Tables(tmp_path, threshold=0.99), "rnn_adam")
    (loose,) = palindrome_rows(Tables(tmp_path, threshold=0.95), "rnn_adam")
    assert (strict["steps_to"], loose["steps_to"]) == (200, 100)
    (never,) = palindrome_rows(Tables(tmp_path, threshold=1.0 + 1e-9), "rnn_adam")
    assert never["steps_to"] is None


def test_each_models_part_of_the_pattern_is_judged_per_initialisation(tmp_path):
    """The RNN follows the original under N(0, sd 1) only, the LSTM under the default only:
    neither initialisation reproduces the whole pattern, and the pair of them does."""
    def acc(model, length, init):
        follows = (model == "rnn") == (init == "normal")
        return 1.0 if (original_pattern(model, length) if follows else True) else 0.1

    rows = [run(m, L, 0, acc(m, L, i), init=i, std=s) for m in ("rnn", "lstm") for L in range(5, 11)
            for i, s in (("default", 0.01), ("normal", 1.0))]
    write_study(tmp_path, "init_study", rows)
    write_study(tmp_path, "lstm_adam_lr01", [run("lstm", 10, 0, 1.0)])
    card = init_scorecard(tmp_path, 0.99).drop_duplicates("init").set_index("init")
    assert card.loc["normal", "rnn_match"] == 1.0 and card.loc["default", "lstm_match"] == 1.0
    assert card.loc["default", "rnn_match"] == pytest.approx(3 / 6)  # 8-10 converge there
    assert card.loc["normal", "pattern_match"] < 1 and card.loc["default", "pattern_match"] < 1


def test_comparisons_carry_a_paired_interval(tables):
    """Claim 6: the LSTM against the RNN on the longer lengths, seed x length pairs."""
    row = scorecard(tables, 0.99).set_index("claim").loc[6]
    assert row["interval_of"] == "mean paired difference" and row["pairs"] == 6
    assert row["interval_lo"] <= row["interval_hi"]
    assert "paired difference" in row["measured"] and "seed x length pairs" in row["measured"]


def test_each_learning_rate_is_reported_under_each_initialisation(tmp_path):
    """Claim 5's second half, per initialisation: every LSTM run at the lr study's length,
    from whichever study trained it, counted once (the default-init runs are shared)."""
    from rnnrepro.report.context import lr_by_init

    def lstm(seed, acc, lr, init="default", std=0.01, **kw):
        return run("lstm", 10, seed, acc, init=init, std=std, lr=lr, optimizer="adam",
                   reached_step=900 if acc >= 0.99 else None, **kw) | {
            "run_id": f"lstm-10-{seed}-{init}{std}-lr{lr}"}

    write_study(tmp_path, "lstm_adam", [lstm(s, 1.0, 1e-3) for s in (0, 1, 2)]
                + [run("lstm", 9, 0, 1.0, lr=1e-3, optimizer="adam")])  # another length: left out
    write_study(tmp_path, "lstm_adam_lr01", [lstm(0, 1.0, 0.01), lstm(1, 0.1, 0.01),
                                             lstm(2, 0.3, 0.01, outcome="lost")])
    write_study(tmp_path, "init_study", [lstm(0, 1.0, 1e-3),  # the lstm_adam seed-0 run again
                                         lstm(0, 0.1, 1e-3, init="normal", std=0.001)])
    write_study(tmp_path, "init_lr01", [lstm(0, 1.0, 0.01, init="normal", std=0.001)])
    out = lr_by_init(Tables(tmp_path, 0.99))
    assert out.length == 10 and out.lrs == [1e-3, 0.01]
    default, small = out.rows
    assert default["label"].startswith("default") and small["label"] == "N(0, sd 0.001)"
    assert default["cells"][1e-3] | {"interval": None} == {
        "seeds": 3, "converged": 3, "lost": 0, "never": 0, "interval": None, "final": 1.0,
        "reached": 900.0}
    hi = default["cells"][0.01]
    assert (hi["converged"], hi["lost"], hi["never"]) == (1, 1, 1)
    assert hi["final"] == pytest.approx((1.0 + 0.1 + 0.3) / 3)
    assert small["cells"][1e-3]["converged"] == 0 and small["cells"][0.01]["converged"] == 1


def test_a_curve_meets_a_target_between_evaluations():
    from rnnrepro.analysis.scorecard import crossing_step

    e = pd.DataFrame({"step": [0, 500, 1000], "accuracy": [0.0, 0.4, 0.6], "loss": [4.0, 2.0, 1.0]})
    assert crossing_step(e, "accuracy", 0.5) == 750.0  # halfway from 0.4 to 0.6
    assert crossing_step(e, "loss", 1.5) == 750.0  # a loss target is met from above
    assert crossing_step(e, "accuracy", 0.0) == 0.0 and crossing_step(e, "accuracy", 0.7) is None


def _text_study(root, curves, by_seed=None):
    """Text runs, one per temperature, with held-out accuracy curves `curves` {T: [acc...]}
    evaluated every 500 steps (loss falls as accuracy rises); or several seeds, `by_seed`
    {seed: {T: [acc...]}}."""
    rows, evals = [], []
    for seed, seed_curves in (by_seed or {0: curves}).items():
        for T, accs in seed_curves.items():
            rid = f"text-T{T}-seed{seed}"
            rows.append({"run_id": rid, "temperature": T, "seed": seed, "steps": 500 * (len(accs) - 1),
                         "eval_final_accuracy": accs[-1], "eval_lowest_loss": 4 - 4 * max(accs),
                         "eval_lowest_loss_step": 500 * (len(accs) - 1)})
            evals += [{"run_id": rid, "temperature": T, "seed": seed, "step": 500 * i, "accuracy": a,
                       "loss": 4 - 4 * a} for i, a in enumerate(accs)]
    d = root / "studies" / "text_temperature"
    d.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(d / "runs.csv", index=False)
    pd.DataFrame(evals).to_csv(d / "evals.csv", index=False)


def test_claim_9_tells_apart_runs_that_meet_a_target_between_the_same_evaluations(tmp_path):
    """Every run meets every target between steps 500 and 1000: the first evaluation at the
    target ties them, the interpolated step keeps T = 0.5 ahead of 1 and 2 behind."""
    _text_study(tmp_path, {0.5: [0.0, 0.40, 0.62, 0.62], 1.0: [0.0, 0.35, 0.62, 0.62],
                           2.0: [0.0, 0.30, 0.62, 0.62]})
    per_seed, measured, row = temperature_claim(Tables(tmp_path, 0.99))
    assert per_seed == {0: True}
    assert row["verdict"] == "held" and row["interval_of"] == "targets" and row["pairs"] == 4
    assert "T=0.5 before T=1 at 4 and T=2 after T=1 at 4 of 4 targets" in measured


def test_claim_9_is_unresolved_when_the_targets_disagree(tmp_path):
    # T = 0.5 is ahead early (the 80 % target) and behind later (the 95 % one)
    _text_study(tmp_path, {0.5: [0.0, 0.50, 0.52, 0.62], 1.0: [0.0, 0.40, 0.62, 0.62],
                           2.0: [0.0, 0.30, 0.50, 0.62]})
    per_seed, _, row = temperature_claim(Tables(tmp_path, 0.99))
    assert row["verdict"] == "unresolved" and per_seed == {0: False}


ORDERED = {0.5: [0.0, 0.40, 0.62, 0.62], 1.0: [0.0, 0.35, 0.62, 0.62], 2.0: [0.0, 0.30, 0.62, 0.62]}
REVERSED = {0.5: [0.0, 0.30, 0.62, 0.62], 1.0: [0.0, 0.35, 0.62, 0.62], 2.0: [0.0, 0.40, 0.62, 0.62]}


@pytest.mark.parametrize("seeds,expect", [
    ({s: ORDERED for s in range(6)}, "held"),
    ({s: REVERSED for s in range(6)}, "not held"),
    ({s: ORDERED if s % 2 else REVERSED for s in range(6)}, "unresolved"),
    ({s: ORDERED for s in range(3)}, "unresolved"),  # fewer than MIN_PAIRS seeds decide nothing
])
def test_claim_9_over_seeds_is_judged_by_the_interval_of_each_seeds_lead(tmp_path, seeds, expect):
    """With several seeds per temperature, each seed's smaller lead in steps (T = 0.5 over 1,
    1 over 2, averaged over the targets) is one paired difference; its bootstrap interval
    decides, as for claims 3 and 6."""
    _text_study(tmp_path, None, by_seed=seeds)
    per_seed, measured, row = temperature_claim(Tables(tmp_path, 0.99))
    assert row["verdict"] == expect, measured
    assert row["interval_of"] == "seeds' lead in steps" and row["pairs"] == len(seeds)
    assert per_seed == {s: c is ORDERED for s, c in seeds.items()}
    if len(seeds) >= MIN_PAIRS:
        assert (row["interval_lo"] > 0) == (expect == "held")
        assert (row["interval_hi"] < 0) == (expect == "not held")
    assert f"seed 0 of {len(seeds)} per temperature" in measured and f"Over {len(seeds)} seeds" in measured
    assert "T=0.5 over T=1 is" in measured and "T=1 over T=2 is" in measured
    assert row["weaker_lead"] in ("T=0.5 over T=1", "T=1 over T=2")


def test_claim_9_names_a_reference_seed_that_lacks_a_temperature(tmp_path):
    _text_study(tmp_path, None, by_seed={0: {0.5: ORDERED[0.5], 1.0: ORDERED[1.0]}, 1: ORDERED})
    assert temperature_claim(Tables(tmp_path, 0.99)) == (
        {}, "seed 0, the reference run's, lacks an evaluated run at one of temperatures 0.5, 1 and 2")


def test_a_collapse_seen_in_a_run_and_its_longer_twin_counts_once(tmp_path):
    """The 40k-step run of a seed repeats its 20k-step run's steps: where both lost the task at
    the same evaluation, one collapse; a run lost at its last evaluation says nothing about
    coming back; falls are counted on the longest run of a setting and seed only."""
    from rnnrepro.report.collapse import collapses

    def lost(seed, steps, lost_step, peak, final=0.2, after=1.0, falls=1, final_loss=2.0):
        return run("rnn", 10, seed, final, outcome="lost", optimizer="adam", lr=1e-3, steps=steps,
                   max_norm=10.0, reached_step=500, last_held_step=lost_step - 100, falls=falls,
                   held_grad_norm=2e-4, held_peak_grad_norm=1e-3, peak_grad_norm=peak,
                   after_grad_norm=after, saturation_held=0.4, saturation_final=0.8,
                   w_h_norm_held=5.0, w_h_norm_final=8.0, eval_final_loss=final_loss) | {
            "lost_step": lost_step, "run_id": f"rnn-{seed}-{steps}"}

    write_study(tmp_path, "rnn_adam_long", [lost(2, 20_000, 16_900, 1742.0),
                                            lost(1, 20_000, 20_000, 50.0, after=None)])
    write_study(tmp_path, "rnn_adam_40k", [lost(2, 40_000, 16_900, 1742.0, falls=1, final_loss=2.303),
                                           run("rnn", 10, 1, 1.0, optimizer="adam", lr=1e-3,
                                               steps=40_000, max_norm=10.0, falls=3)])
    col = collapses(Tables(tmp_path, 0.99), ["rnn_adam_long", "rnn_adam_40k"])
    assert (col.count, col.repeated, col.collapsed, col.after) == (2, 1, 2, 1)
    assert [r["repeats"] for r in col.runs] == [None, None, 20_000]
    assert col.spiked == 2 and col.uniform == 0  # the twin's uniform end is not counted
    # falls: seed 2 and seed 1 from their 40k runs (1 and 3), not again from the 20k ones
    assert col.falls | {"by_optimizer": None} == {"reached": 2, "fell": 2, "falls": 4, "lost": 1,
                                                     "by_optimizer": None}
