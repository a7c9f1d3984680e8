"""Run outcomes (never, kept, lost), Wilson intervals, paired bootstrap intervals, the
verdicts built on them, and the ten-seed profile."""

import pandas as pd
import pytest
import yaml

from rnnrepro.analysis import outcomes as O
from rnnrepro.analysis import statistics as St


def _run(accuracies, every=100, grads=None, saturation=None, norms=None):
    steps = [i * every for i in range(len(accuracies))]
    n = len(steps)
    evals = pd.DataFrame({"step": steps, "loss": 0.0, "accuracy": accuracies,
                          "saturation": saturation or [0.1] * n, "w_h_norm": norms or [1.0] * n})
    metric_steps = list(range(1, steps[-1] + 1))
    grads = grads or {}
    metrics = pd.DataFrame({"step": metric_steps, "loss": 0.0, "accuracy": 0.0,
                            "grad_norm": [grads.get(s, 2.0) for s in metric_steps]})
    return evals, metrics


def test_a_run_that_never_reaches_the_criterion():
    row = O.classify(*_run([0.1, 0.5, 0.98, 0.97]), 0.99)
    assert row["outcome"] == "never" and row["reached_step"] is None and row["lost_step"] is None
    assert row["falls"] is None


def test_a_run_that_dips_and_comes_back_kept_it():
    row = O.classify(*_run([0.1, 0.995, 0.5, 1.0, 0.9, 0.8, 1.0]), 0.99)
    assert row["outcome"] == "kept" and row["reached_step"] == 100 and row["lost_step"] is None
    assert row["falls"] == 2  # below at 200 and again from 400: both recovered


def test_a_lost_run_names_where_it_was_lost_and_what_happened_there():
    after = {s: 0.1 for s in range(301, 401)}
    evals, metrics = _run([0.1, 1.0, 1.0, 0.3, 0.2], grads={250: 900.0, 150: 3.0, **after},
                          saturation=[0.0, 0.1, 0.2, 0.7, 0.8], norms=[1.0, 2.0, 2.5, 6.0, 7.0])
    row = O.classify(evals, metrics, 0.99)
    assert row["outcome"] == "lost"
    assert (row["reached_step"], row["last_held_step"], row["lost_step"]) == (100, 200, 300)
    assert row["falls"] == 1
    assert row["peak_grad_norm"] == 900.0  # the largest norm in (200, 300]
    assert row["held_grad_norm"] == 2.0  # the median while held: (100, 200]
    # the yardstick for the peak: each held interval's largest norm, here (100, 200] only
    assert row["held_peak_grad_norm"] == 3.0
    assert row["after_grad_norm"] == 0.1  # the median after the loss: (300, 400]
    assert (row["saturation_held"], row["saturation_final"]) == (0.2, 0.8)
    assert (row["w_h_norm_held"], row["w_h_norm_final"]) == (2.5, 7.0)
    assert set(row) == set(O.COLUMNS)


def test_a_run_that_held_the_criterion_at_one_evaluation_is_measured_on_the_interval_before():
    evals, metrics = _run([0.1, 1.0, 0.3, 0.2], grads={150: 40.0, 50: 5.0})
    row = O.classify(evals, metrics, 0.99)
    assert (row["reached_step"], row["last_held_step"], row["lost_step"]) == (100, 100, 200)
    assert row["held_grad_norm"] == 2.0 and row["held_peak_grad_norm"] == 5.0  # (0, 100]
    assert row["peak_grad_norm"] == 40.0


@pytest.mark.parametrize("k,n,lo,hi", [(3, 3, 0.4385, 1.0), (0, 3, 0.0, 0.5615),
                                       (2, 3, 0.2077, 0.9385), (10, 10, 0.7225, 1.0),
                                       (9, 10, 0.5958, 0.9821)])
def test_wilson_interval_has_the_textbook_values(k, n, lo, hi):
    got = St.wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-4)
    assert St.wilson(0, 0) == (None, None)


def test_share_verdicts_say_what_three_seeds_cannot_tell():
    assert St.share_verdict(3, 3) == "held" and St.share_verdict(0, 3) == "not held"
    assert St.share_verdict(2, 3) == "unresolved" and St.share_verdict(1, 3) == "unresolved"
    assert St.share_verdict(9, 10) == "mostly held" and St.share_verdict(1, 10) == "mostly not held"
    assert St.share_verdict(5, 10) == "unresolved" and St.share_verdict(0, 0) == "not run"
    assert set(St.VERDICTS) >= {St.share_verdict(k, 10) for k in range(11)}


def test_paired_interval_is_reproducible_and_judges_by_zero():
    diffs = [0.1, 0.2, 0.15, 0.05, 0.12, 0.3]
    mean, lo, hi = St.paired_interval(diffs)
    assert mean == pytest.approx(sum(diffs) / 6) and 0 < lo < mean < hi
    assert St.paired_interval(diffs) == (mean, lo, hi)
    assert St.difference_verdict(lo, hi, 6) == "held"
    mixed = [0.2, -0.3, 0.1, -0.1, 0.05, -0.2]
    _, lo2, hi2 = St.paired_interval(mixed)
    assert lo2 < 0 < hi2 and St.difference_verdict(lo2, hi2, 6) == "unresolved"
    worse = [-0.2, -0.1, -0.3, -0.25, -0.15, -0.05]
    _, lo3, hi3 = St.paired_interval(worse)
    assert St.difference_verdict(lo3, hi3, 6) == "not held"
    assert St.paired_interval([0.4]) == (0.4, None, None)
    assert St.difference_verdict(None, None, 0) == "unresolved"


def test_too_few_pairs_decide_nothing():
    """Three pairs of one sign: the percentile interval is about [min, max], above zero,
    and still no verdict."""
    _, lo, hi = St.paired_interval([0.01, 0.02, 0.03])
    assert lo > 0 and St.difference_verdict(lo, hi, 3) == "unresolved"


@pytest.mark.parametrize("k1,n1,k2,n2,p", [(3, 3, 0, 3, 0.1), (3, 3, 1, 3, 0.4), (1, 3, 1, 3, 1.0),
                                          (10, 10, 2, 10, 0.000714), (7, 10, 3, 10, 0.1789)])
def test_fisher_exact_test_has_the_textbook_values(k1, n1, k2, n2, p):
    assert St.fisher_exact(k1, n1, k2, n2) == pytest.approx(p, abs=1e-4)
    assert St.fisher_exact(k2, n2, k1, n1) == pytest.approx(p, abs=1e-4)  # symmetric


def expand_with_profile(profile):
    """The default config's runs per study, alone and with a profile (config/*.yaml) on top,
    as Snakemake merges two --configfile files; the merged config passes the checks."""
    from snakemake.utils import update_config

    from rnnrepro.config import studies as S

    base = yaml.safe_load(open("config/config.yaml"))
    merged = yaml.safe_load(open("config/config.yaml"))
    update_config(merged, yaml.safe_load(open(profile)))
    S.check_config(merged)
    (runs, by_study), (more, more_by_study) = S.expand(base), S.expand(merged)
    assert set(runs) < set(more)  # the default config's runs keep their ids
    return len(more) - len(runs), by_study, more_by_study


def test_the_ten_seed_profile_adds_seeds_to_the_claims_1_2_5_studies_only():
    added, by_study, more_by_study = expand_with_profile("config/ten_seeds.yaml")
    assert added == 7 * (6 + 3 + 1 + 6 + 1)
    for name in ("rnn_adam", "rnn_adam_long", "rnn_adam_40k", "lstm_adam", "lstm_adam_lr01"):
        assert len(more_by_study[name]) == 10 * len(by_study[name]) // 3
    for name in ("rnn_rmsprop", "lstm_rmsprop", "init_study", "text_temperature"):
        assert more_by_study[name] == by_study[name]


def test_the_text_seed_profile_adds_six_seeds_per_temperature_to_the_text_study_only():
    from rnnrepro.analysis.statistics import MIN_PAIRS

    added, by_study, more_by_study = expand_with_profile("config/text_seeds.yaml")
    assert added == 3 * (MIN_PAIRS - 1)
    assert len(more_by_study.pop("text_temperature")) == 3 * MIN_PAIRS
    assert more_by_study == {k: v for k, v in by_study.items() if k != "text_temperature"}
