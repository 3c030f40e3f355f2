from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures" / "parity"

# Two cores on CI: keep each test process from oversubscribing them.
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
