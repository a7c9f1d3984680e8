"""Whose folder a run's output folder is: a run writes only into one that holds nothing or
its own files. This decides where a run may write, never what it computes, so it is not part
of any run's code (sources.NOT_RESULTS) and may ask for every kind of run (config.kinds)
without making the Section 2 kinds part of every run's code."""

import json

from rnnrepro.config.kinds import SPECS
from rnnrepro.files import CheckpointError, load_checkpoint


class FolderError(RuntimeError):
    """An output folder that holds another run's results."""


def own_folder(out, run_id):
    """Another run's summary.json or model.pt in `out` (a run of any kind) stops this run
    before it trains; its own earlier summary.json goes first, so that the folder never shows
    a summary older than its metrics. A file that cannot be read names no run: it is
    replaced."""
    found = {}
    summary = out / "summary.json"
    if summary.exists():
        try:
            found["summary.json"] = json.loads(summary.read_text(encoding="utf-8")).get("run_id")
        except (ValueError, AttributeError, OSError):
            found["summary.json"] = None  # unreadable: it is replaced below
    if (out / "model.pt").exists():
        try:
            ck = load_checkpoint(out / "model.pt", keys=("kind", "spec"))
            found["model.pt"] = SPECS[ck["kind"]].from_dict(ck["spec"]).run_id()
        except (CheckpointError, KeyError, TypeError, ValueError):
            found["model.pt"] = None  # unreadable: rewritten when the run finishes
    for name, other in found.items():
        if other is not None and other != run_id:
            raise FolderError(f"{out} holds the results of run {other} ({name}), and this is run "
                              f"{run_id}: a run writes only into its own folder. Give another "
                              "output folder, or move that one away to train this run there")
    summary.unlink(missing_ok=True)
