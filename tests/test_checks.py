"""The one set of rules every entry point applies (rnnrepro.config.checks, studies.check_*): values
read as the schema's types where they come as text, messages of one form, numbers finite,
text carriable, runs that fit in memory, paths inside the checkout."""

import re
from pathlib import Path

import pytest
import yaml

from rnnrepro.config import studies as S
from rnnrepro.config.checks import coerce, memory_needs, memory_problem, walk_problems
from rnnrepro.config.spec import RUN_ID, Execution, PalindromeSpec, SpecError, TextSpec

ROOT = Path(__file__).resolve().parents[1]


def test_text_is_read_as_the_type_the_schema_wants_and_nothing_else():
    assert coerce("3", {"type": "integer"}) == 3 and coerce("3", {"type": "number"}) == 3
    assert coerce("3e-3", {"type": "number"}) == 0.003 and coerce("-2.5", {"type": "number"}) == -2.5
    assert coerce("true", {"type": "boolean"}) is True and coerce("off", {"type": "boolean"}) is False
    assert coerce("3.5", {"type": "integer"}) == "3.5"  # for the check to name
    assert coerce("abc", {"type": "number"}) == "abc" and coerce("3", {"type": "string"}) == "3"
    assert coerce(["0", "5"], {"type": "array", "items": {"type": "integer"}}) == [0, 5]


def config(**edit):
    c = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    c.update(edit)
    return c


def test_values_given_with_snakemake_config_are_read_as_their_types():
    """Snakemake's --config hands list and mapping items over as text (seeds=[0, 5] is
    ['0', '5']); those values, and only those, are read as the schema's types."""
    given = {"seeds": ["0", "5"], "execution": {"threads": "2", "deterministic": "true"},
             "studies": {"x": {"kind": "palindrome", "set": {"lr": "0.1"}, "grid": {"hidden": ["8", "16"]}}}}
    c = config(seeds=["0", "5"])
    c["execution"].update(threads="2", deterministic="true")
    c["studies"]["x"] = {"kind": "palindrome", "set": {"lr": "0.1"}, "grid": {"hidden": ["8", "16"]}}
    c["defaults"]["palindrome"]["lr"] = "3e-3"  # from a file, not --config: stays text
    S.take_overrides(c, given, S.load_schema(ROOT / S.SCHEMA))
    assert c["seeds"] == [0, 5] and c["execution"]["threads"] == 2 and c["execution"]["deterministic"] is True
    assert c["studies"]["x"]["set"]["lr"] == 0.1 and c["studies"]["x"]["grid"]["hidden"] == [8, 16]
    assert c["defaults"]["palindrome"]["lr"] == "3e-3"


def test_a_command_line_value_of_the_wrong_shape_is_told_the_form_that_works(monkeypatch):
    monkeypatch.chdir(ROOT)
    c = config(seeds=0)
    want = "config: seeds must be a list, got 0 (with --config, write seeds=[a, b])"
    with pytest.raises(SpecError, match=re.escape(want)):
        S.check_config(c, ROOT / S.SCHEMA, overrides={"seeds": 0})


@pytest.mark.parametrize("edit,message", [
    (lambda c: c["corpus"].update(retries=0), "config corpus: retries must be ≥ 1, got 0"),
    (lambda c: c["report"].update(convergence_threshold=2),
     "config report: convergence_threshold must be ≤ 1, got 2"),
    (lambda c: c["report"].update(prompts=["Once", ""]),
     "config report: prompts[1] must be non-empty text, got ''"),
    (lambda c: c["defaults"]["palindrome"].update(batch="64"),
     "config defaults.palindrome: batch must be a whole number, got '64'"),
    (lambda c: c["studies"]["rnn_adam"]["grid"].update(input_length=["6"]),
     "config studies.rnn_adam.grid: input_length must be a whole number, got '6'"),
    (lambda c: c["execution"].update(numerics="exact"),
     "config execution: numerics must be one of ('native', 'portable'), got 'exact'"),
])
def test_config_messages_have_one_form(edit, message, monkeypatch):
    monkeypatch.chdir(ROOT)
    c = config()
    edit(c)
    with pytest.raises(SpecError, match=re.escape(message)):
        S.check_config(c, ROOT / S.SCHEMA)


def test_the_command_line_and_a_spec_file_are_checked_by_the_configs_rules():
    """The same value refused in a config and through `rnnrepro train`, in the same words."""
    where = {}
    with pytest.raises(SpecError) as err:
        S.check_fields(PalindromeSpec, {"batch": "64"}, lambda k: where.setdefault(k, f"--{k}"),
                       ROOT / S.SCHEMA)
    assert str(err.value) == "--batch: batch must be a whole number, got '64'"
    with pytest.raises(SpecError, match=r"^--spec f.json: momentum must be in \[0, 1\), got 2.0$"):
        S.check_fields(PalindromeSpec, {"momentum": 2}, lambda k: "--spec f.json", ROOT / S.SCHEMA)
    with pytest.raises(SpecError, match="^threads must be ≥ 1, got 0$"):
        S.check_fields(Execution, {"threads": 0}, schema_path=ROOT / S.SCHEMA)
    assert S.check_fields(TextSpec, {"temperature": 1e30}, schema_path=ROOT / S.SCHEMA).temperature == 1e30


def test_every_number_is_finite_and_every_text_can_be_carried():
    assert walk_problems({"a": [1.0, 2]}, "config") is None
    assert walk_problems({"report": {"x": float("nan")}}, "config") == \
        "config report: x must be a finite number, got nan"
    assert walk_problems({"s": {"x": {"grid": {"t": [1.0, float("-inf")]}}}}, "config") == \
        "config s.x.grid: t[1] must be a finite number, got -inf"
    assert "must not hold a NUL character" in walk_problems({"p": ["a\0"]})
    assert "must not hold '\\ud800'" in walk_problems({"p": "\ud800"})


@pytest.mark.parametrize("temperature", [1e30, 1e-30, 3.3e38, 0.5, 2.0])
def test_run_ids_hold_every_value_a_spec_takes(temperature):
    pal = PalindromeSpec(lr=temperature if temperature < 3e38 else 1.0, init="normal", init_std=temperature)
    for spec in (TextSpec(temperature=temperature), pal):
        assert re.fullmatch(RUN_ID, spec.run_id()), spec.run_id()


def test_the_full_config_fits_in_the_memory_its_jobs_ask_for(monkeypatch):
    monkeypatch.chdir(ROOT)
    c = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    runs, _, _ = S.check_config(c, ROOT / S.SCHEMA)
    most = max(sum(b for b, _ in memory_needs(r.spec).values()) for r in runs.values())
    assert most < 100 * 2 ** 20  # a hundred MB at most, against 2000 asked for


def test_a_run_beyond_its_memory_names_the_key_that_asks_the_most():
    err = memory_problem(PalindromeSpec(eval_size=10 ** 11), 2000, "execution.mem_mb")
    assert err.field == "eval_size" and "the held-out set" in str(err)
    err = memory_problem(TextSpec(steps=10 ** 9, sample_every=1, eval_every=10 ** 9, log_every=10 ** 9),
                         2000, "execution.mem_mb")
    assert err.field == "sample_every" and str(err).endswith("raise it")
    assert memory_problem(TextSpec(), 2000, "execution.mem_mb") is None


def test_paths_outside_the_checkout_need_the_configs_word(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(tmp_path.parent)  # a link made by the user: taken as written
    for inside in ("data/x.txt", "./data/../data/y.txt", str(tmp_path / "data" / "z.txt")):
        assert S.outside_problem(config(corpus={"path": inside}, execution={})) is None, inside
    for outside in ("../x.txt", "/etc/x.txt", "data/../../x.txt"):
        problem = S.outside_problem(config(corpus={"path": outside}, execution={}))
        assert problem.startswith("config corpus: path must lie in the workflow's folder")
        assert problem.endswith(f"got {outside!r}")
        assert S.outside_problem(config(corpus={"path": outside}, execution={},
                                        write_outside_checkout=True)) is None
    tensorboard = config(corpus={"path": "d"}, execution={"tensorboard": "/tmp/tb"})
    assert S.outside_problem(tensorboard).startswith("config execution: tensorboard must lie in")


def test_config_files_given_together_are_checked_merged_as_snakemake_merges_them(capsys, monkeypatch):
    """`--configfile config/config.yaml config/ten_seeds.yaml`: the second file alone is no
    config; merged over the first it is the ten-seed profile."""
    from rnnrepro.cli import main

    monkeypatch.chdir(ROOT)
    assert main(["check-config", "config/config.yaml", "config/ten_seeds.yaml"]) == 0
    out = capsys.readouterr().out
    assert "config/config.yaml + config/ten_seeds.yaml: valid; 15 studies, 263 training runs" in out
    assert main(["check-config", "config/ten_seeds.yaml"]) == 1
    assert "config: corpus must be given" in capsys.readouterr().err
