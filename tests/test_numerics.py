"""`execution.numerics: portable`: the same metrics.csv bytes on any x86-64 CPU.

The sha256 below were made in portable mode on a 2-core AMD EPYC VM (AVX-512) on
2026-12-07, with torch 2.13.0 (the build scripts/setup.sh installs). A machine with another
CPU that runs this test proves the portability (or disproves it: the failure names its CPU).
On one machine, the settings that portable mode does not pin and that stand in for another
CPU (MKL's instruction set, oneDNN's, the C library's CPU features) must change nothing in
portable mode, while ATen's kernel set, which it pins, does change native runs.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from rnnrepro.run import numerics

ROOT = Path(__file__).resolve().parents[1]
PAL = ["--optimizer", "adam", "--input-length", "6", "--steps", "150", "--hidden", "24",
       "--batch", "64", "--lr", "0.003", "--eval-every", "50", "--eval-size", "500"]
MADE_WITH = "2.13.0"  # the torch release the sha256 below were made with
CASES = {  # tiny runs of each step: the RNN's hand-written one, torch's LSTM, the text model
    "rnn": (["palindrome", "--model", "rnn", *PAL],
            "4ba89b2c49a42d9f5be0333137719286b5717e50e84d53ccfda2b533d7e02627"),
    "lstm": (["palindrome", "--model", "lstm", *PAL],
             "9210a01eb0fe816bc82194c3fef2526be5972f9081812e985c04236be73ad92d"),
    "text": (["text", "--steps", "60", "--hidden", "32", "--batch", "32", "--eval-every", "30",
              "--sample-every", "30"],
             "0f0e1422303381db657cf9f6fbf691086f0fca6464e58a82448a46cc582181d6"),
}
# what differs from one x86-64 CPU to another and portable mode leaves as it is, as far as
# one machine can pretend it
OTHER_CPU = {
    "mkl-sse42": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "onednn-sse41": {"DNNL_MAX_CPU_ISA": "SSE41"},
    "libc-no-avx-fma": {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX,-AVX2,-FMA,-FMA4,-AVX512F"},
}
x86_64 = pytest.mark.skipif(platform.machine() != "x86_64", reason="numerics portable is for x86-64 CPUs")


def cpu_flags():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def train(case, out, corpus, numerics_mode="portable", env=None):
    args, _ = CASES[case]
    cmd = [sys.executable, "-m", "rnnrepro", "train", *args, "--device", "cpu", "--threads", "1",
           "--numerics", numerics_mode, "--out", str(out)]
    if case == "text":
        cmd += ["--corpus", str(corpus)]
    environ = {k: v for k, v in os.environ.items() if k not in numerics.PORTABLE_ENV}
    res = subprocess.run(cmd, capture_output=True, text=True, env={**environ, **(env or {})},
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    return hashlib.sha256((out / "metrics.csv").read_bytes()).hexdigest()


@x86_64
@pytest.mark.parametrize("case", CASES)
def test_portable_runs_give_the_committed_bytes(case, tmp_path, corpus_path):
    import torch

    if torch.__version__.split("+")[0] != MADE_WITH:
        pytest.skip(f"the sha256 were made with torch {MADE_WITH}, this is {torch.__version__}")
    got = train(case, tmp_path / case, corpus_path)
    assert got == CASES[case][1], (
        f"numerics portable gave another metrics.csv for the {case} run on this CPU "
        f"({cpu_model()}): sha256 {got}, committed {CASES[case][1]} (AMD EPYC, AVX-512)")
    summary = json.loads((tmp_path / case / "summary.json").read_text())
    (segment,) = summary["execution"]["segments"]
    assert summary["execution"]["numerics"] == segment["numerics"] == "portable"
    assert segment["cpu_capability"] == "DEFAULT" and segment["mkl"] is True
    assert segment["mkl_cbwr"] == "COMPATIBLE,STRICT" and segment["mkldnn"] is False


@x86_64
@pytest.mark.slow
@pytest.mark.parametrize("case", ["lstm", "text"])
def test_settings_that_stand_for_another_cpu_change_nothing_in_portable_mode(case, tmp_path, corpus_path):
    portable = train(case, tmp_path / "portable", corpus_path)
    for name, env in OTHER_CPU.items():
        assert train(case, tmp_path / name, corpus_path, env=env) == portable, name
    if "avx2" in cpu_flags():  # the kernel set portable mode pins does change a native run
        native, baseline = (train(case, tmp_path / name, corpus_path, "native", env) for name, env in (
            ("native", {}), ("native-baseline", {"ATEN_CPU_CAPABILITY": "default"})))
        assert native != baseline


@x86_64
def test_portable_mode_is_refused_where_torch_was_loaded_first():
    """In a process that imported torch before the mode could pin its kernels."""
    code = "import torch\nfrom rnnrepro.run.numerics import configure\nconfigure('portable')"
    environ = {k: v for k, v in os.environ.items() if k not in numerics.PORTABLE_ENV}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ,
                         cwd=ROOT)
    assert res.returncode != 0 and "torch was loaded first" in res.stderr, res.stderr[-1000:]
    res = subprocess.run([sys.executable, "-c", code.replace("portable", "native")], env=environ,
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-1000:]  # native takes the process as it is


def test_a_resumed_run_names_each_stretch_of_its_computation(tmp_path, monkeypatch):
    """A run continued under another impl records both stretches, each with its numerics."""
    from rnnrepro.config.spec import Execution, PalindromeSpec
    from rnnrepro.train.palindrome import train_palindrome

    from .train_utils import interrupted

    spec = PalindromeSpec(model="lstm", input_length=4, steps=40, hidden=8, eval_every=20,
                          eval_size=50)
    with interrupted(monkeypatch, after_checkpoints=1):
        train_palindrome(spec, tmp_path, Execution(device="cpu", impl="loop", checkpoint_every=20))
    summary = train_palindrome(spec, tmp_path, Execution(device="cpu", impl="fused"))
    segments = summary["execution"]["segments"]
    assert [(s["from_step"], s["impl"]) for s in segments] == [(0, "loop"), (20, "fused")]
    assert all(s["numerics"] == "native" and s["cpu_capability"] for s in segments)
    assert summary["execution"]["impl"] == "fused" and summary["resumed_from"] == [20]


def test_the_compute_table_names_how_each_run_computed_its_floats():
    """The report's provenance (its compute section) reads these columns."""
    from rnnrepro.analysis.tables import numerics_of

    both = {"segments": [{"numerics": "native", "cpu_capability": "AVX512"},
                         {"numerics": "portable", "cpu_capability": "DEFAULT"},
                         {"numerics": "portable", "cpu_capability": "DEFAULT"}]}
    assert numerics_of(both) == {"numerics": "native+portable", "cpu_kernels": "AVX512+DEFAULT"}
    assert numerics_of({"numerics": "portable"}) == {"numerics": "portable", "cpu_kernels": ""}
    assert numerics_of({}) == {"numerics": "native", "cpu_kernels": ""}  # a summary from before
