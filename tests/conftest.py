import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = ROOT.parent / "shared" / "data" / "grimms_fairy_tales.txt"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus_path():
    path = Path(os.environ.get("RNNREPRO_CORPUS", SHARED_CORPUS))
    if not path.exists():
        pytest.fail(f"the shared corpus is missing: {path} (set RNNREPRO_CORPUS)")
    return path


@pytest.fixture(scope="session")
def corpus(corpus_path):
    from rnnrepro.data import Corpus

    return Corpus.from_file(corpus_path)
