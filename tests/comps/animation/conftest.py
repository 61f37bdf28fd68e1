"""Animation fixtures shared by several test files: the SadTalker checkpoint folder (written once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.sadtalker_weights import write_sadtalker_checkpoints


@pytest.fixture(scope="session")
def sadtalker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SadTalker's published file names and key layout, deterministic weights (see `support.sadtalker_weights`)."""
    return write_sadtalker_checkpoints(tmp_path_factory.mktemp("sadtalker"))
