"""The one file the test cluster (tests/slurm/cluster.sh) puts outside its state dir:
/etc/slurm/slurm.conf, a link to the state dir's config while the cluster is up.

A test session killed before `cluster.sh down` leaves that link to a cluster whose daemons
are gone. Every Snakemake start then waits about 9 s: the SLURM executor plugin runs
`scontrol show config` whenever Snakemake starts, and scontrol waits for the dead controller.
"""

import os
import tempfile
from pathlib import Path

ETC_CONF = Path("/etc/slurm/slurm.conf")


def dead_cluster(conf):
    """Whether conf is the slurm.conf of a cluster.sh state dir none of whose daemons lives
    (cluster.sh keeps STATE/run/NAME.pid and STATE/munge)."""
    state = Path(conf).parent
    if not ((state / "run").is_dir() and (state / "munge").is_dir()):
        return False
    for pidfile in (state / "run").glob("*.pid"):
        comm = Path(f"/proc/{pidfile.read_text().strip()}/comm")
        if comm.exists() and comm.read_text().strip() == pidfile.stem:
            return False
    return True


def linked_conf():
    """Where /etc/slurm/slurm.conf links to, or None if it is no link."""
    return Path(os.readlink(ETC_CONF)) if ETC_CONF.is_symlink() else None


def clear_dead_link():
    """Remove /etc/slurm/slurm.conf if it is a link to a dead cluster.sh cluster; returns
    where it pointed, else None."""
    target = linked_conf()
    if target is None or os.geteuid() != 0:
        return None
    ours = target.parent.name.startswith("rnnrepro-slurm-")
    if dead_cluster(target) or (ours and not target.exists()):
        ETC_CONF.unlink(missing_ok=True)
        return target
    return None


def plant_dead_link(tmp):
    """Leave /etc/slurm/slurm.conf as a killed session leaves it: a link to a state dir whose
    daemons are gone. Only where no live config of anyone's is there (and as root); returns
    whether it planted one."""
    target = linked_conf()
    if os.geteuid() != 0 or (target is None and ETC_CONF.exists()):
        return False
    if target is not None and target.exists() and not dead_cluster(target):
        return False
    old = Path(tempfile.mkdtemp(prefix="stale-", dir=tmp))
    for sub in ("run", "munge"):
        (old / sub).mkdir()
    (old / "slurm.conf").write_text("# the config of a cluster that is gone\n")
    (old / "run" / "slurmctld.pid").write_text("999999999\n")  # beyond pid_max: never alive
    ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
    ETC_CONF.unlink(missing_ok=True)
    ETC_CONF.symlink_to(old / "slurm.conf")
    return True
