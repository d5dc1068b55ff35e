"""Shared fixtures of the residual tests: one torch thread, a small SAC config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

pytest.importorskip("stable_baselines3")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # The machine is small and shared: tiny updates on two threads are slower. Restored after.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
