"""Helpers for training tests: a run stopped right after a checkpoint, as a kill leaves it."""

from contextlib import contextmanager

import pytest


class Stopped(Exception):
    """Raised in place of a kill, right after a resume checkpoint was written."""


@contextmanager
def interrupted(monkeypatch, after_checkpoints=1):
    """Training inside this block stops (as killed) right after its n-th resume checkpoint;
    what is on disk then is what a kill at any moment before the next checkpoint leaves
    (the run's files are written with each checkpoint, and resume.pt says where it was)."""
    from rnnrepro.train import loop

    real, calls = loop.torch_saves, []

    def save_then_stop(items):
        real(items)
        calls.append(1)
        if len(calls) == after_checkpoints:
            raise Stopped(f"stopped after checkpoint {len(calls)}")

    with monkeypatch.context() as m:
        m.setattr(loop, "torch_saves", save_then_stop)
        with pytest.raises(Stopped):
            yield
