"""Fixtures for the GRU4Rec engine tests: small synthetic event logs (no Django, no database)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def events(sessions: list[list[str]], start: float = 1_500_000_000.0) -> pd.DataFrame:
    """Sessions of item ids -> a SessionId/ItemId/Time frame (sessions start one minute apart)."""
    rows = []
    for s, items in enumerate(sessions):
        for k, item in enumerate(items):
            rows.append((s, str(item), start + 60.0 * s + k))
    return pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"])


def rule_sessions(n_sessions: int, seed: int = 0, length=(2, 7)) -> list[list[str]]:
    """Items a-f with a fixed next-item rule a->b->c->d->e->f->a, random start and length."""
    rng = np.random.default_rng(seed)
    letters = "abcdef"
    out = []
    for _ in range(n_sessions):
        start = int(rng.integers(6))
        n = int(rng.integers(length[0], length[1] + 1))
        out.append([letters[(start + k) % 6] for k in range(n)])
    return out


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead in tests
    yield
