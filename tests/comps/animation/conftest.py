"""Animation fixtures shared by several test files: the SadTalker checkpoint folder (written once), 2 threads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from support.sadtalker_weights import write_sadtalker_checkpoints


@pytest.fixture(scope="session")
def sadtalker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SadTalker's published file names and key layout, deterministic weights (see `support.sadtalker_weights`)."""
    return write_sadtalker_checkpoints(tmp_path_factory.mktemp("sadtalker"))


@pytest.fixture
def two_threads() -> Iterator[None]:
    """Torch on 2 threads for the test (the SadTalker fixtures' reference machine; CI has 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
