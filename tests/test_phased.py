"""Section 2: the run specs of the phased LSTM on palindromes and of the frequency task, the
masked models, the two tasks' files, the length extrapolation, and claims 12-15 judged on
tables built for each case (no test depends on how a training run ends)."""

import json
import math

import pandas as pd
import pytest
import torch

from rnnrepro import sources
from rnnrepro.analysis import phased as P
from rnnrepro.analysis.scorecard import scorecard
from rnnrepro.analysis.tables import read_run
from rnnrepro.config.kinds import EVALS, TIMING, FrequencySpec, PhasedSpec
from rnnrepro.config.spec import PalindromeSpec, SpecError, TextSpec
from rnnrepro.config.studies import cli_args
from rnnrepro.data.frequency import frequency_batch
from rnnrepro.models.frequency import FrequencyLSTM, FrequencyPhased

SECTION2_CODE = {"config/kinds.py", "models/phased.py", "models/frequency.py", "train/phased.py",
                 "train/frequency.py", "data/frequency.py"}


# ---------------------------------------------------------------- specs


def test_learned_timing_is_one_set_in_one_order_and_bad_values_are_named():
    a, b = PhasedSpec(learn=("s", "tau")), PhasedSpec(learn=("tau", "s"))
    assert a.learn == ("tau", "s") and a.run_id() == b.run_id()
    assert FrequencySpec().learn == TIMING  # the paper learns all three
    for fields, name in [({"learn": ("tau", "tau")}, "learn"), ({"learn": ("period",)}, "learn"),
                         ({"r_on": 0.0}, "r_on"), ({"r_on": 1.5}, "r_on"), ({"alpha": 1.0}, "alpha"),
                         ({"tau_low": 4.0, "tau_high": 3.0}, "tau_high"),
                         ({"tau_low": math.inf}, "tau_low"), ({"input_length": 1}, "input_length")]:
        with pytest.raises(SpecError) as err:
            PhasedSpec(**fields)
        assert err.value.field == name
    with pytest.raises(SpecError, match="sampling must be one of"):
        FrequencySpec(sampling="sometimes")
    with pytest.raises(SpecError, match="model must be one of"):
        FrequencySpec(model="rnn")


def test_an_lstm_on_the_frequency_task_has_one_run_id_whatever_timing_it_is_given():
    plain = FrequencySpec(model="lstm")
    assert FrequencySpec(model="lstm", r_on=0.2, learn=(), tau_low=2.0).run_id() == plain.run_id()
    assert FrequencySpec(model="phased", r_on=0.2).run_id() != FrequencySpec(model="phased").run_id()
    assert plain.run_id().startswith("freq-lstm-regular-seed0-")


def test_an_empty_learn_list_reaches_the_command_line():
    args = cli_args(FrequencySpec(learn=()))
    assert args[args.index("--learn") + 1].startswith("--")  # the flag, with no value after it
    assert "--learn" in cli_args(PhasedSpec(learn=()))
    assert "--sample-temperatures" not in cli_args(TextSpec())  # empty, and the default


def test_section_2_code_is_in_no_palindrome_or_text_runs_code():
    """Adding the phased studies and their model retrains no existing run: none of their
    modules is in the code of a palindrome or text run, and spec.py never names them."""
    for spec in (PalindromeSpec(model="rnn"), PalindromeSpec(model="lstm"), TextSpec()):
        assert not set(sources.run_code(spec)) & SECTION2_CODE
    assert set(sources.run_code(PhasedSpec())) >= {"config/kinds.py", "models/phased.py",
                                                    "train/phased.py"}
    assert set(sources.run_code(FrequencySpec())) >= SECTION2_CODE


# ---------------------------------------------------------------- models


def _cut(values, times, mask, i):
    n = int(mask[i].sum())
    return values[i : i + 1, :n], times[i : i + 1, :n], mask[i : i + 1, :n]


@pytest.mark.parametrize("cls", [FrequencyLSTM, FrequencyPhased])
@pytest.mark.parametrize("sampling", ["regular", "async"])
def test_a_padded_batch_gives_each_sequence_what_it_gives_alone(cls, sampling):
    """Padding changes nothing: each sequence of a padded batch gets the logits it gets read
    alone at its own length, by the fast path and by the reference loop."""
    torch.manual_seed(0)
    model = cls(12).double().eval()
    values, times, mask, _ = frequency_batch(6, sampling, torch.Generator().manual_seed(1))
    values, times = values[..., 0].double(), times.double()
    for fast in (True, False):
        batch = model(values, times, mask, fast=fast)
        for i in range(len(values)):
            alone = model(*_cut(values, times, mask, i), fast=fast)
            torch.testing.assert_close(batch[i : i + 1], alone)
    torch.testing.assert_close(model(values, times, mask, fast=True),
                               model(values, times, mask, fast=False))


def test_the_frequency_lstm_reads_the_time_as_its_second_input():
    model = FrequencyLSTM(8)
    assert model.W_x.shape == (32, 2)
    values, times, mask, _ = frequency_batch(4, "async", torch.Generator().manual_seed(0))
    shifted = model(values[..., 0], times + 10, mask)
    assert not torch.allclose(shifted, model(values[..., 0], times, mask))


# ---------------------------------------------------------------- the tasks' files


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run of each new kind (three evaluations), trained through the loop."""
    from rnnrepro.train.frequency import train_frequency
    from rnnrepro.train.phased import train_phased

    root = tmp_path_factory.mktemp("runs")
    specs = {"phased": PhasedSpec(hidden=8, batch=16, steps=20, eval_every=10, eval_size=300,
                                  input_length=5),
             "freq-phased": FrequencySpec(hidden=8, batch=8, steps=20, eval_every=10, eval_size=64),
             "freq-lstm": FrequencySpec(model="lstm", sampling="async", hidden=8, batch=8, steps=20,
                                        eval_every=10, eval_size=64)}
    folders = {}
    for name, spec in specs.items():  # a run's folder is named by its id
        train = train_phased if spec.kind == "phased" else train_frequency
        folders[name] = root / spec.run_id()
        train(spec, folders[name])
    return folders, specs


def test_a_phased_run_writes_the_gate_measures_and_its_timing(trained):
    runs, _ = trained
    summary, metrics, evals, _ = read_run(runs["phased"])
    assert list(evals.columns) == list(EVALS["phased"]) and list(evals["step"]) == [0, 10, 20]
    assert evals["open_share"].between(0, 1).all() and evals["first_open"].between(0, 1).all()
    assert list(evals["r_on"]) == pytest.approx([0.05] * 3)  # not learned by default
    timing = summary["timing"]
    assert timing["learned"] == ["tau", "s"] and len(timing["tau_initial"]) == 8
    assert timing["tau_initial"] != timing["tau_final"]  # τ trained
    assert all(math.e ** 1 - 1e-4 <= t <= math.e ** 3 + 1e-4 for t in timing["tau_initial"])


def test_frequency_runs_write_the_gate_for_the_phased_lstm_only(trained):
    runs, _ = trained
    _, _, phased, _ = read_run(runs["freq-phased"])
    summary, _, lstm, _ = read_run(runs["freq-lstm"])
    assert phased["open_share"].between(0, 1).all() and phased["accuracy"].between(0, 1).all()
    assert lstm[["open_share", "first_open", "tau_median", "r_on"]].isna().all().all()
    assert "timing" not in summary and summary["input_dim"] == 2


def test_extrapolation_at_the_training_length_is_the_runs_own_evaluation(trained):
    from rnnrepro.analysis.extrapolation import extrapolate

    runs, _ = trained
    rows = extrapolate([("phased_short", runs["phased"])], [5, 10, 20], 300)
    assert [r["length"] for r in rows] == [5, 10, 20]
    assert all(0 <= r["accuracy"] <= 1 and r["train_length"] == 5 for r in rows)
    _, _, evals, _ = read_run(runs["phased"])
    assert rows[0]["accuracy"] == pytest.approx(evals["accuracy"].iloc[-1])
    with pytest.raises(ValueError, match="not a palindrome model"):
        extrapolate([("x", runs["freq-lstm"])], [5], 10)


# ---------------------------------------------------------------- claims 12-15


def _memory(root, longest, extrapolated=None, far=40, size=2000):
    """Memory studies whose runs keep the criterion up to `longest[study]` (0: never)."""
    for study, top in longest.items():
        d = root / "studies" / study
        d.mkdir(parents=True)
        rows = [{"run_id": f"{study}-{L}", "seed": 0, "input_length": L, "steps": 3000,
                 "hidden": 128, "batch": 128, "lr": 1e-3, "optimizer": "adam",
                 "outcome": "kept" if L <= top else "never",
                 "reached_step": 1000.0 * L / 10 if L <= top else None,
                 "eval_final_accuracy": 1.0 if L <= top else 0.2, "outcome_threshold": 0.99}
                for L in (10, 20, 40)]
        pd.DataFrame(rows).to_csv(d / "runs.csv", index=False)
        pd.DataFrame([{"run_id": r["run_id"], "seed": 0, "input_length": r["input_length"],
                       "step": s, "accuracy": r["eval_final_accuracy"]} for r in rows for s in (0, 3000)]
                     ).to_csv(d / "evals.csv", index=False)
    if extrapolated:
        pd.DataFrame([{"study": s, "run_id": f"{s}-20", "seed": 0, "train_length": 20, "length": L,
                       "accuracy": acc if L == far else 1.0, "loss": 1.0}
                      for s, acc in extrapolated.items() for L in (20, far)]
                     ).to_csv(root / "extrapolation.csv", index=False)


def _card(root, claim):
    card = scorecard(root, 0.99, frequency_target=0.9, extrapolation_size=2000).set_index("claim")
    return card.loc[claim]


@pytest.mark.parametrize("longest, extrapolated, want", [
    ({"lstm_memory": 10, "phased_short": 20, "phased_long": 10}, None, "held"),
    ({"lstm_memory": 20, "phased_short": 10, "phased_long": 0}, None, "not held"),
    ({"lstm_memory": 20, "phased_short": 20, "phased_long": 10},
     {"lstm_memory": 0.2, "phased_short": 0.5, "phased_long": 0.1}, "held"),
    ({"lstm_memory": 20, "phased_short": 20, "phased_long": 10},
     {"lstm_memory": 0.2, "phased_short": 0.21, "phased_long": 0.1}, "not held"),  # within noise
    ({"lstm_memory": 0, "phased_short": 0, "phased_long": 0}, None, "unresolved"),
])
def test_claim_12_longest_length_then_extrapolation(tmp_path, longest, extrapolated, want):
    _memory(tmp_path, longest, extrapolated)
    row = _card(tmp_path, 12)
    assert row["verdict"] == want, row["measured"]
    assert "longest input length that kept the criterion to the end" in row["measured"]


def test_claim_13_counts_which_model_met_its_criterion_first(tmp_path):
    _memory(tmp_path, {"lstm_memory": 20, "phased_short": 20, "phased_long": 0})
    # at lengths 10 and 20 both reach it at the same step: not faster; at 40 neither: not judged
    row = _card(tmp_path, 13)
    assert row["verdict"] == "not held" and "first in 0 of 2 comparisons" in row["measured"]
    runs = pd.read_csv(tmp_path / "studies" / "phased_short" / "runs.csv")
    runs["reached_step"] = runs["reached_step"] / 2
    runs.to_csv(tmp_path / "studies" / "phased_short" / "runs.csv", index=False)
    assert _card(tmp_path, 13)["verdict"] == "held"


def _frequency(root, study, rows, curves):
    d = root / "studies" / study
    d.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(d / "runs.csv", index=False)
    pd.DataFrame([{**{k: r[k] for k in ("run_id", "model", "sampling", "learn", "seed")},
                   "step": s, "accuracy": a} for r, curve in zip(rows, curves) for s, a in curve]
                 ).to_csv(d / "evals.csv", index=False)


def _freq_run(model, sampling, acc, learn="no gate", **kw):
    return {"run_id": f"{model}-{sampling}-{learn}", "model": model, "sampling": sampling,
            "learn": learn, "seed": 0, "eval_final_accuracy": acc, "eval_size": 2000, "hidden": 32,
            "steps": 3000, "batch": 32, "lr": 1e-3, **kw}


@pytest.mark.parametrize("phased, lstm, want", [(0.95, 0.80, "held"), (0.81, 0.80, "not held"),
                                                (0.70, 0.80, "not held")])
def test_claim_14_compares_the_asynchronous_runs_beyond_the_held_out_noise(tmp_path, phased, lstm, want):
    rows = [_freq_run("phased", "async", phased, "tau, s, r_on"), _freq_run("lstm", "async", lstm),
            _freq_run("phased", "regular", 0.9, "tau, s, r_on"), _freq_run("lstm", "regular", 0.9)]
    _frequency(tmp_path, "frequency_sampling", rows, [[(0, 0.5), (3000, r["eval_final_accuracy"])]
                                                      for r in rows])
    row = _card(tmp_path, 14)
    assert row["verdict"] == want, row["measured"]
    assert P.beyond_noise(0.95, 0.80, 2000, 2000) and not P.beyond_noise(0.81, 0.80, 2000, 2000)


@pytest.mark.parametrize("all3_curve, moved, want", [
    ([(0, 0.5), (1000, 0.6), (2000, 0.95)], True, "held"),  # r_on learned: later to 90 %
    ([(0, 0.5), (500, 0.95), (2000, 0.95)], True, "not held"),  # as fast
    ([(0, 0.5), (1000, 0.6), (2000, 0.95)], False, "not held"),  # τ did not move
])
def test_claim_15_needs_tau_to_move_and_r_on_to_slow_learning(tmp_path, all3_curve, moved, want):
    tau = {"tau_initial": 7.0, "r_on_initial": 0.05, "r_on_final": 0.05}
    rows = [_freq_run("phased", "async", 0.95, "none", tau_final=7.0, **tau),
            _freq_run("phased", "async", 0.95, "tau, s", tau_final=7.5 if moved else 7.0, **tau),
            _freq_run("phased", "async", 0.95, "tau, s, r_on", tau_final=7.4,
                      **{**tau, "r_on_final": 0.08})]
    curves = [[(0, 0.5), (500, 0.95), (2000, 0.95)]] * 2 + [all3_curve]
    _frequency(tmp_path, "frequency_learn", rows, curves)
    row = _card(tmp_path, 15)
    assert row["verdict"] == want, row["measured"]
    assert "r_on 0.050 → 0.080" in row["measured"]


def test_section_2_claims_are_not_run_without_their_studies(tmp_path):
    (tmp_path / "corpus_stats.json").write_text(json.dumps({"characters": 1, "distinct": 1}))
    card = scorecard(tmp_path, 0.99, 0.9, 2000).set_index("claim")
    assert list(card.loc[[12, 13, 14, 15], "verdict"]) == ["not run"] * 4


def test_claim_12_is_unresolved_for_a_tie_without_the_extrapolation(tmp_path):
    _memory(tmp_path, {"lstm_memory": 20, "phased_short": 20, "phased_long": 10})
    assert _card(tmp_path, 12)["verdict"] == "unresolved"


def test_claim_15_reads_its_three_sets_by_name_and_the_studys_own_sampling(tmp_path):
    """A study with a fourth set of learned parameters, sampled regularly: the rule still
    compares nothing / tau and s / all three, at the study's sampling."""
    tau = {"tau_initial": 7.0, "r_on_initial": 0.05, "r_on_final": 0.05}
    sets = {"none": 7.0, "s": 7.0, "tau, s": 7.5, "tau, s, r_on": 7.4}
    rows = [_freq_run("phased", "regular", 0.95, w, tau_final=f, **tau) for w, f in sets.items()]
    curves = [[(0, 0.5), (500, 0.95), (2000, 0.95)]] * 3 + [[(0, 0.5), (1000, 0.6), (2000, 0.95)]]
    _frequency(tmp_path, "frequency_learn", rows, curves)
    row = _card(tmp_path, 15)
    assert row["verdict"] == "held", row["measured"]
    assert row["measured"].startswith("seed 0, regular samples")


@pytest.mark.parametrize("claim", [14, 15])
def test_a_study_with_several_runs_per_setting_is_unresolved_not_a_crash(tmp_path, claim):
    rows = [_freq_run(m, "async", 0.9, "tau, s, r_on" if m == "phased" else "no gate", hidden=h,
                      tau_initial=7.0, tau_final=7.0, r_on_initial=0.05, r_on_final=0.05)
            for m in ("lstm", "phased") for h in (32, 110)]
    for r in rows:
        r["run_id"] += f"-{r['hidden']}"
    study = "frequency_sampling" if claim == 14 else "frequency_learn"
    if claim == 15:
        rows = [dict(r, model="phased", learn=w, run_id=f"{w}-{r['hidden']}")
                for r in rows[2:] for w in ("none", "tau, s", "tau, s, r_on")]
    _frequency(tmp_path, study, rows, [[(0, 0.5), (3000, 0.9)]] * len(rows))
    row = _card(tmp_path, claim)
    assert row["verdict"] == "unresolved" and "several runs per" in row["measured"], row["measured"]
