"""Where a training job's wall time goes: seconds per phase, summed in the process.

`fit_unit` opens a `Phases` for its unit and times its own phases (setup, training steps,
evaluation, the task's work between steps, checkpoints, logs); code it calls, such as a
task's evaluation, adds a phase of its own with `timed(name)`, which counts inside the phase
that called it (health is part of evaluation). A run's summary.json keeps the sums as
`phases_s`, continued across resumes. The training steps on a GPU are timed as the host sees
them: each flush waits for the device, so the sum is right at the flush's granularity.
"""

import contextlib
import time

_active = None


class Phases:
    def __init__(self):
        self.seconds = {}

    def __enter__(self):
        global _active
        self._outer, _active = _active, self
        return self

    def __exit__(self, *exc):
        global _active
        _active = self._outer

    @contextlib.contextmanager
    def __call__(self, name):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def total(self, base):
        """These sums added to `base` (a run's sums from before a resume)."""
        return {k: base.get(k, 0.0) + self.seconds.get(k, 0.0)
                for k in sorted(set(base) | set(self.seconds))}


def timed(name):
    """A phase inside the unit being trained now; nothing is timed outside one."""
    return _active(name) if _active else contextlib.nullcontext()
