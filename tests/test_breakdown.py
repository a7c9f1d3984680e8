"""benchmarks/breakdown.py on a workflow run built for it: a Snakemake log with three jobs,
two training jobs' benchmark files and summaries; every figure it prints follows from them."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("breakdown", ROOT / "benchmarks" / "breakdown.py")
breakdown = importlib.util.module_from_spec(spec)
spec.loader.exec_module(breakdown)

LOG = """Select jobs to execute...
Execute 2 jobs...

[Mon Dec  7 17:00:00 2026]
localrule train_palindrome:
    input: a
    jobid: 7
    wildcards: run_id=lstm-a

[Mon Dec  7 17:00:00 2026]
localrule train_palindrome:
    jobid: 8

[Mon Dec  7 17:02:00 2026]
Finished jobid: 7 (Rule: train_palindrome)

[Mon Dec  7 17:03:00 2026]
Finished jobid: 8 (Rule: train_palindrome)

[Mon Dec  7 17:03:00 2026]
localrule figure:
    jobid: 9

[Mon Dec  7 17:04:00 2026]
Finished jobid: 9 (Rule: figure)
"""


def _run(results, name, seconds, phases):
    (results / "compute" / "palindrome").mkdir(parents=True, exist_ok=True)
    (results / "compute" / "palindrome" / f"{name}.tsv").write_text(
        f"s\th:m:s\tmax_rss\n{seconds}\t0:02:00\t100\n")
    run = results / "runs" / "palindrome" / name
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"phases_s": phases}))


def test_breakdown_of_a_built_run(tmp_path, capsys):
    log = tmp_path / "run.snakemake.log"
    log.write_text(LOG)
    results = tmp_path / "results"
    _run(results, "lstm-a", 120.0, {"setup": 1, "steps": 90, "evaluation": 24, "health": 6})
    _run(results, "lstm-b", 180.0, {"setup": 1, "steps": 150, "evaluation": 24, "health": 6})
    jobs = breakdown.jobs_from_log(log)
    assert {j: (rule, (end - start).total_seconds()) for j, (rule, start, end) in jobs.items()} == {
        "7": ("train_palindrome", 120.0), "8": ("train_palindrome", 180.0), "9": ("figure", 60.0)}
    breakdown.main(["--results", str(results), "--log", str(log), "--cores", "2"])
    out = capsys.readouterr().out
    # 360 s of jobs in 240 s of wall time on 2 cores: busy 75 %
    assert "Wall time 4.0 min" in out and "6.0 min of job time (3 jobs)" in out and "75 %" in out
    assert "| train_palindrome | 2 | 5.0 | 83.3 % |" in out
    # steps 240 s of 300 s; evaluation 48 s with 12 s of health in it; the rest is 300 - 290
    assert "| palindrome | 2 | 5.0 | 4.0 (80 %) | 0.0 | 0.8 (16 %) (0.2) | 0.0 | 0.0 (1 %) |" in out
    assert out.rstrip().endswith("| 0.2 (3 %) |")


def test_the_floors_count_each_runs_matrix_products():
    # LSTM at input length 10, 128 units, scalar digits: per sequence 9 recurrent products of
    # 2 x 512 x 128 x 128 (none for h_0 = 0), the input term 2 x 10 x 512 and the readout
    # 2 x 128 x 10; training counts the recurrence and readout three times, the input twice
    lstm = {"model": "lstm", "input_length": 10, "hidden": 128, "batch": 128, "steps": 1000,
            "eval_size": 10_000}
    seq = 1_179_648 + 10_240 + 2_560
    step = 128 * (3 * 1_179_648 + 2 * 10_240 + 3 * 2_560)
    assert breakdown.matmul_flops("palindrome", lstm, {}, 11) == (1000 * step, 11 * 10_000 * seq)
    rnn = breakdown.matmul_flops("palindrome", {**lstm, "model": "rnn"}, {}, 11)
    assert rnn[1] == 11 * 10_000 * (9 * 2 * 128 * 128 + 2 * 10 * 128 + 2_560)
    onehot = breakdown.matmul_flops("palindrome", {**lstm, "input_encoding": "onehot"}, {}, 11)
    assert onehot[1] == 11 * 10_000 * (1_179_648 + 2_560)
    # the text model: two layers of 128 units on 87 characters, windows of 30, batch 64: about
    # 2.3 GFLOP a step, as benchmarks/README.md states
    text = {"seq_length": 30, "hidden": 128, "layers": 2, "batch": 64, "steps": 1}
    corpus = {"distinct": 87, "validation_start": 0, "validation_end": 30}
    steps, evaluation = breakdown.matmul_flops("text", text, {"corpus": corpus}, 1)
    assert 2.3e9 < steps < 2.4e9 and evaluation == steps / (64 * 3)
