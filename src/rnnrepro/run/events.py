"""Live training curves for TensorBoard (`execution.tensorboard: <folder>`, off by default).

Each run writes event files to <folder>/<run id>/ while it trains, so that
`tensorboard --logdir <folder>` shows every run of the workflow as it goes: the rows of
metrics.csv as train/<column> and those of eval.csv as eval/<column>, at their steps. The
events are a view of the same rows, written as they are flushed from the device; the CSV
files stay the record (nothing here changes them), and a run's id does not depend on it.

A resumed run writes its rows again from the first step, in a new events file that tells
TensorBoard to drop what the earlier attempt wrote (purge_step 0): events the killed
attempt had not flushed yet are not lost, and no step shows twice.
"""

from pathlib import Path

INSTALL = "pip install 'rnnrepro[tensorboard]' (or: pip install tensorboard)"


def check_available():
    """Fail before training where TensorBoard's writer cannot be imported."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as err:
        raise RuntimeError(f"execution.tensorboard needs the tensorboard package ({err}): "
                           f"{INSTALL}") from None


class EventLog:
    """The event files of one run: `write(state)` adds the rows not written yet."""

    def __init__(self, root, run_id, resumed):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(Path(root) / run_id), flush_secs=30,
                                    purge_step=0 if resumed else None)
        self.done = {"metrics": 0, "evals": 0}

    def write(self, state):
        for table, prefix in (("metrics", "train"), ("evals", "eval")):
            rows = state[table]
            for row in rows[self.done[table]:]:
                for key, value in row.items():
                    if key != "step" and isinstance(value, (int, float)):
                        self.writer.add_scalar(f"{prefix}/{key}", value, row["step"])
            self.done[table] = len(rows)

    def close(self):
        self.writer.close()
