"""Shared fixtures of the IMLE tests: the toy demonstrations and a generator trained on them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import torch
from imle_toy import SMALL_GEN, TOY_TRAIN, make_bimodal_dataset

from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.imle import IMLEGenerator, TrainHistory, train_generator


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # The test machine is small and shared: two intra-op threads fighting other
    # processes make tiny matmuls ~10x slower. Restored afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def bimodal_dataset() -> DemoDataset:
    return make_bimodal_dataset()


@pytest.fixture(scope="session")
def trained(bimodal_dataset: DemoDataset) -> tuple[IMLEGenerator, TrainHistory, float]:
    """The small MLP trained on the toy set once per session (a few seconds)."""
    t0 = time.perf_counter()
    gen, history = train_generator(bimodal_dataset, SMALL_GEN, TOY_TRAIN, progress=False)
    return gen, history, time.perf_counter() - t0
