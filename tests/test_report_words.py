"""The words the report's collapse subsection and abstract choose by the numbers (made in
Python, report/collapse.py), and the subsection rendered with them for one, some and every
run: no "1 runs", no sentence left half in the singular."""

import re
from pathlib import Path

import pytest

from rnnrepro.report.collapse import Collapse, collapse_words
from rnnrepro.report.latex import environment, raw
from rnnrepro.report.words import count_word, plural

TEMPLATES = Path(__file__).parents[1] / "report" / "templates"


def test_counts_open_sentences_in_words_up_to_twelve():
    assert [count_word(n) for n in (0, 1, 2, 12, 13, 140)] == ["No", "One", "Two", "Twelve", "13",
                                                                 "140"]
    assert plural(1, "run", "runs") == "run"
    assert plural(0, "run", "runs") == plural(3, "run", "runs") == "runs"


def _run(model="rnn", steps=400, seed=0, **kw):
    row = {"run_id": f"{model}-{steps}-{seed}", "model": model, "optimizer": "adam", "lr": 0.01,
           "input_length": 10, "steps": steps, "seed": seed, "init": "default", "init_label": "default",
           "max_norm": 10.0, "reached": 100, "last_held": 200, "lost": 300, "final": 0.3,
           "final_loss": 2.0, "collapsed": True, "held_grad": 0.005, "held_peak": 1.0,
           "peak_grad": 50.0, "after_grad": 3.0, "sat_held": 0.4, "sat_final": 0.6, "w_held": 5.0,
           "w_final": 6.0, "repeats": None}
    return row | kw


def _collapse(n, after=None, spiked=None, models=("rnn",), uniform=0, falls=None):
    runs = [_run(models[i % len(models)], seed=i) for i in range(n)]
    after = n if after is None else after
    return Collapse(runs=runs, count=n, collapsed=n, after=after, models=sorted(set(models)),
                    spiked=n if spiked is None else spiked, saturated_more=after, norm_grew=after,
                    grad_fell=0, uniform=uniform, rnn_10=sum(m == "rnn" for m in models[:n]),
                    median={"peak_grad": 50.0, "held_peak": 1.0, "held_grad": 0.005, "final": 0.3},
                    median_after={"held_grad": 0.005, "after_grad": 3.0, "sat_held": 0.4,
                                  "sat_final": 0.6, "w_held": 5.0, "w_final": 6.0, "final_loss": 2.0},
                    falls=falls or {"reached": n, "fell": n, "falls": 2 * n, "lost": n,
                                    "by_optimizer": {"adam": {"reached": n, "fell": n, "falls": 2 * n,
                                                              "lost": n}}})


def test_words_follow_the_counts():
    one, three = collapse_words(_collapse(1)), collapse_words(_collapse(3))
    assert (one["Count"], one["runs"], one["It_all"], one["models"]) == (
        "One", "run", "It", ", a vanilla RNN")
    assert (three["Count"], three["runs"], three["It_all"], three["models"]) == (
        "Three", "runs", "All of them", ", all of them vanilla RNNs")
    assert collapse_words(_collapse(2, models=("rnn", "lstm")))["models"] == ""
    assert collapse_words(_collapse(3, spiked=2))["in_spiked"] == "2 of them"
    assert collapse_words(_collapse(3))["in_spiked"] == "every one of them"
    assert collapse_words(_collapse(3, after=2))["for_after"] == "the other two runs"
    assert collapse_words(_collapse(3, after=3))["for_after"] == "the three runs"
    assert collapse_words(_collapse(3, after=1))["for_after"] == "the run"
    assert one["reached_runs"] == "run" and one["falls"] == "falls"  # 2 falls of 1 run
    single = {"reached": 1, "fell": 1, "falls": 1, "lost": 1}
    assert collapse_words(_collapse(1, falls=single))["falls"] == "fall"


def _render(collapse):
    env = environment(TEMPLATES)
    tex = env.get_template("02_collapse.tex.j2").render(
        threshold=0.99, collapses=collapse,
        figures={"fig_collapse": {"path": "fig_collapse.pdf", "caption": raw("Lost runs.")}})
    return " ".join(str(tex).split())


@pytest.mark.parametrize("n, after, spiked, uniform",
                         [(1, 1, 1, 0), (2, 2, 1, 1), (3, 2, 3, 2), (5, 5, 0, 5)])
def test_the_collapse_subsection_agrees_with_its_counts(n, after, spiked, uniform):
    text = _render(_collapse(n, after=after, spiked=spiked, uniform=uniform))
    assert not re.search(r"\b1 (runs|falls)\b|\bOne runs\b|\bone runs\b", text), text
    assert f"{count_word(n)} {plural(n, 'run', 'runs')} reached the criterion and lost it" in text
    assert text.count("$T$=10") == n  # one row of the table per lost run
    assert (r"\label{tab:collapse}" in text) and ("fig_collapse.pdf" in text)
    if spiked == 0:
        assert "No gradient spike" in text
    if after == n and n > 1:
        assert f"For the {count_word(n).lower()} runs, which trained on after the loss" in text
    if after == 1:
        assert "For the run, which trained on after the loss" in text


def test_no_lost_run_gives_the_one_sentence_that_says_so():
    text = _render(Collapse(falls=None))
    assert "No run of the palindrome studies reached the criterion and then lost it" in text
    assert "tab:collapse" not in text


def test_templates_choose_singular_or_plural_through_one_filter(tmp_path):
    (tmp_path / "t.tex.j2").write_text('((( n ))) ((( n|plural("seed", "seeds") )))')
    env = environment(tmp_path)
    assert [str(env.get_template("t.tex.j2").render(n=n)) for n in (0, 1, 2)] == [
        "0 seeds", "1 seed", "2 seeds"]
