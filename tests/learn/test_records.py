"""The one JSON round trip of configs and histories (imle_mpc.learn.records)."""

from __future__ import annotations

import json

import pytest

from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.genpo.ppo import FinetuneHistory, PPOConfig
from imle_mpc.learn.imle.train import TrainHistory


@pytest.mark.parametrize(
    "record",
    [
        GeneratorConfig(mlp_hidden=(32, 16)),
        TrainConfig(grad_clip=float("inf")),
        PPOConfig(critic_hidden=(8, 4)),
        TrainHistory(loss=[1.0, 0.5], skipped=[0, 2]),
        FinetuneHistory(updates=[{"step": 3}], seconds=1.5),
    ],
)
def test_round_trip_through_json_gives_an_equal_record(record: object) -> None:
    text = json.dumps(record.to_dict())  # type: ignore[attr-defined]
    back = type(record).from_dict(json.loads(text))  # type: ignore[attr-defined]
    assert back == record


def test_tuple_fields_come_back_as_tuples_and_lists_are_copied() -> None:
    config = PPOConfig.from_dict({**PPOConfig().to_dict(), "critic_hidden": [8, 4]})
    assert config.critic_hidden == (8, 4)
    losses = [1.0]
    history = TrainHistory.from_dict({**TrainHistory().to_dict(), "loss": losses})
    history.loss.append(2.0)
    assert losses == [1.0]


def test_unknown_keys_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"no fields \['mlp_hiden'\].*known fields"):
        GeneratorConfig.from_dict({"mlp_hiden": [4]})
