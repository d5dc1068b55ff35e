"""Shared fixtures of the flow tests: the toy demonstrations and a flow trained on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from flow_toy import SMALL_FLOW, TOY_FLOW_TRAIN, make_toy_dataset

from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.flow import ChunkFlow, FlowHistory, train_flow


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # Small shared machine: one intra-op thread (restored afterwards).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def toy_dataset() -> DemoDataset:
    return make_toy_dataset()


@pytest.fixture(scope="session")
def trained_flow(toy_dataset: DemoDataset) -> tuple[ChunkFlow, FlowHistory]:
    """The small flow trained on the toy set once per session (a few seconds)."""
    return train_flow(toy_dataset, SMALL_FLOW, TOY_FLOW_TRAIN, progress=False)
