import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = ROOT.parent / "shared" / "data" / "grimms_fairy_tales.txt"

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def no_dead_slurm_config():
    """A killed earlier session's SLURM config link would add ~9 s to every Snakemake start
    in this one (tests/slurm_utils.py): it goes first."""
    from .slurm_utils import clear_dead_link

    gone = clear_dead_link()
    if gone:
        print(f"removed /etc/slurm/slurm.conf -> {gone}: a test cluster that is no longer up")


@pytest.fixture(scope="session")
def corpus_path():
    path = Path(os.environ.get("RNNREPRO_CORPUS", SHARED_CORPUS))
    if not path.exists():
        pytest.fail(f"the shared corpus is missing: {path} (set RNNREPRO_CORPUS)")
    return path


@pytest.fixture(scope="session")
def corpus(corpus_path):
    from rnnrepro.data.corpus import Corpus

    return Corpus.from_file(corpus_path)


@pytest.fixture(scope="session")
def finished_workflow(tmp_path_factory, corpus_path):
    """One complete run of config/test.yaml in a private copy of the workflow, shared by the
    end-to-end tests (they only read it or ask Snakemake for dry runs). The copy's path has
    spaces, a quote, a non-ASCII letter, a command substitution and a variable: any checkout
    path must work, as data (the rules' shell runs nothing it spells)."""
    from .workflow_utils import make_workdir, snakemake

    workdir = tmp_path_factory.mktemp("workflow") / "a checkout's path $(touch ran) $HOME, Märchen"
    workdir.mkdir()
    workdir = make_workdir(workdir, corpus_path)
    snakemake(workdir)
    assert not list(workdir.parent.rglob("ran")), "a rule's shell ran a command from the checkout path"
    return workdir
