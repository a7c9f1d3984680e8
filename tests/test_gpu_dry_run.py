"""benchmarks/gpu.sh, the prepared GPU run, as a dry run on the CPU: every check it makes, its
timings, and the full config's step through real Snakemake under the mission's command (the
test config here, with jobs that share runs as they do on CUDA), so that the one lent GPU
session spends its minutes measuring, not debugging."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .workflow_utils import ROOT, config_run_ids

pytestmark = pytest.mark.slow


def test_gpu_script_dry_run(tmp_path, corpus_path):
    env = {**os.environ, "OUT": str(tmp_path), "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_SCALE": "0.02",
           "GPU_CHECK_CONFIG": "config/test.yaml", "GPU_CHECK_RUNS_PER_JOB": "64",
           "PYTHON": sys.executable, "RNNREPRO_CORPUS": str(corpus_path),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh")], env=env, capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    results = json.loads((tmp_path / "gpu_results.json").read_text())
    assert len(results["checks"]) >= 18 and all(v.startswith("PASS") for v in results["checks"].values())
    assert results["full_config"] == {"exit": 0, "wall_s": results["full_config"]["wall_s"],
                                      "runs": len(config_run_ids()), "impl": "auto"}
    assert any("stack of 6" in k for k in results["speeds"])
    log = (tmp_path / "full_config.log").read_text()
    assert re.search(r"\b(\d+) of \1 steps \(100%\) done", log), log[-2000:]  # every job of the DAG
