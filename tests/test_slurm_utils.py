"""The test cluster's one file outside its state dir (tests/slurm_utils.py): a link left by a
dead cluster is removed at the start of a session; anything else is left alone."""

import os
import time
from pathlib import Path

import pytest

from . import slurm_utils


@pytest.fixture
def etc(tmp_path, monkeypatch):
    conf = tmp_path / "etc" / "slurm.conf"
    conf.parent.mkdir()
    monkeypatch.setattr(slurm_utils, "ETC_CONF", conf)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    return conf


def state_dir(tmp_path, name, pids):
    state = tmp_path / name
    (state / "run").mkdir(parents=True)
    (state / "munge").mkdir()
    (state / "slurm.conf").write_text(f"{slurm_utils.HEADER}: a single-node test cluster.\n")
    for daemon, pid in pids.items():
        (state / "run" / f"{daemon}.pid").write_text(f"{pid}\n")
    return state / "slurm.conf"


def test_a_link_to_a_dead_cluster_is_removed(tmp_path, etc):
    dead = state_dir(tmp_path, "rnnrepro-slurm-a", {"slurmctld": 999999999, "munged": 999999998})
    etc.symlink_to(dead)
    assert slurm_utils.clear_dead_link() == dead
    assert not etc.is_symlink() and dead.exists()


def test_a_dangling_link_of_ours_is_removed(tmp_path, etc):
    etc.symlink_to(tmp_path / "rnnrepro-slurm-gone" / "slurm.conf")
    assert slurm_utils.clear_dead_link() is not None and not etc.is_symlink()


def test_a_live_cluster_a_site_config_and_foreign_links_stay(tmp_path, etc):
    comm = Path("/proc/self/comm").read_text().strip()  # this process: a live "daemon"
    live = state_dir(tmp_path, "rnnrepro-slurm-b", {comm: os.getpid()})
    etc.symlink_to(live)
    assert slurm_utils.clear_dead_link() is None and etc.is_symlink()
    etc.unlink()
    etc.symlink_to(tmp_path / "elsewhere" / "slurm.conf")  # dangling, but not ours
    assert slurm_utils.clear_dead_link() is None and etc.is_symlink()
    etc.unlink()
    etc.write_text("ClusterName=site\n")
    assert slurm_utils.clear_dead_link() is None and etc.read_text() == "ClusterName=site\n"


def test_a_cluster_coming_up_and_a_foreign_config_are_not_dead(tmp_path, etc):
    young = state_dir(tmp_path, "rnnrepro-slurm-c", {})  # linked, no daemon has written its pid yet
    assert not slurm_utils.dead_cluster(young)
    old = time.time() - 2 * slurm_utils.YOUNG_S
    os.utime(young, (old, old))
    assert slurm_utils.dead_cluster(young)
    site = state_dir(tmp_path, "rnnrepro-slurm-d", {"slurmctld": 999999999})
    site.write_text("ClusterName=site\n")  # run/ and munge/, but not cluster.sh's config
    etc.symlink_to(site)
    assert not slurm_utils.dead_cluster(site) and slurm_utils.clear_dead_link() is None
    assert etc.is_symlink()


def test_a_dead_link_is_planted_only_where_nothing_live_is(tmp_path, etc):
    assert slurm_utils.plant_dead_link(tmp_path)
    assert slurm_utils.dead_cluster(os.readlink(etc))
    etc.unlink()
    comm = Path("/proc/self/comm").read_text().strip()
    live = state_dir(tmp_path, "rnnrepro-slurm-e", {comm: os.getpid()})
    etc.symlink_to(live)
    assert not slurm_utils.plant_dead_link(tmp_path) and Path(os.readlink(etc)) == live
    etc.unlink()
    etc.write_text("ClusterName=site\n")
    assert not slurm_utils.plant_dead_link(tmp_path) and etc.read_text() == "ClusterName=site\n"
