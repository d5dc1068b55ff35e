"""Demonstration quality: the flow's density ranks a dataset's episodes and flags bad ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flow_toy import SMALL_FLOW, TOY_FLOW_TRAIN, T, make_toy_dataset

from imle_mpc.cli import main
from imle_mpc.core.errors import InputError
from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.learn.flow import ChunkFlow, FlowHistory, save_flow
from imle_mpc.learn.flow.quality import QualityRule, cross_fit, score_dataset, subset

STRAIGHT = 2
"""Injected through-obstacle episodes: straight ahead (ay = 0), between the two routes."""


def with_straight(dataset: DemoDataset, count: int = STRAIGHT, seed: int = 1) -> DemoDataset:
    """``dataset`` plus ``count`` episodes that drive straight through the toy's obstacle."""
    rng = np.random.default_rng(seed)
    episodes = list(dataset.episodes)
    t = np.arange(T, dtype=np.float64)
    for _ in range(count):
        actions = np.stack([np.ones(T), np.zeros(T)], axis=1) + 0.05 * rng.uniform(-1, 1, (T, 2))
        py = np.concatenate([[0.0], np.cumsum(0.1 * actions[:-1, 1])])
        obs = np.stack([t / T, py], axis=1)
        episodes.append(Episode(obs, np.concatenate([obs, np.zeros((T, 2))], axis=1), actions))
    modes = [*dataset.meta["modes"], *(["up", "down"] * count)[:count]]
    return DemoDataset(tuple(episodes), {**dataset.meta, "modes": modes})


def test_trusted_flow_flags_the_through_obstacle_demos_and_no_good_one(
    trained_flow: tuple[ChunkFlow, FlowHistory],
) -> None:
    flow, _ = trained_flow
    fresh = make_toy_dataset(n_demos=16, seed=5)  # good demonstrations it never saw
    data = with_straight(fresh)
    report = score_dataset(flow, data)
    bad = set(range(16, 16 + STRAIGHT))
    assert set(report.flagged) == bad
    # the ranking puts them first, and the flagged set is what cleaned() drops
    assert set(report.ranking[:STRAIGHT]) == bad
    assert len(report.cleaned(data).episodes) == 16


def test_cross_fitting_flags_an_injected_one_at_a_false_alarm_rate_of_one_in_sixteen(
    toy_dataset: DemoDataset,
) -> None:
    # One: several alike bad episodes in other folds teach each fold's flow their
    # behaviour, and then vouch for each other (the README's figures show it).
    data = with_straight(toy_dataset, count=1)
    report = cross_fit(data, folds=3, flow_config=SMALL_FLOW, train_config=TOY_FLOW_TRAIN,
                       progress=False)  # fmt: skip
    flagged = set(report.flagged)
    assert 16 in flagged
    assert report.ranking[0] == 16
    assert len(flagged - {16}) <= 1  # the rule's stated rate: a few percent of good ones
    assert {e.fold for e in report.episodes} == {0, 1, 2}


def test_a_clean_dataset_is_left_alone(trained_flow: tuple[ChunkFlow, FlowHistory]) -> None:
    flow, _ = trained_flow
    report = score_dataset(flow, make_toy_dataset(n_demos=16, seed=6))
    assert len(report.flagged) <= 1


def test_the_rule_is_robust_to_a_third_of_the_episodes_being_bad() -> None:
    rule = QualityRule()
    good = np.linspace(-12.0, -4.0, 20)
    scores = np.concatenate([good, np.full(10, -80.0)])
    cutoff = rule.cutoff(scores)
    assert good.min() > cutoff > -80.0


def test_a_flow_for_another_observation_size_or_task_is_refused(
    trained_flow: tuple[ChunkFlow, FlowHistory], toy_dataset: DemoDataset
) -> None:
    flow, _ = trained_flow
    wider = DemoDataset(
        tuple(Episode(np.hstack([e.observations, e.observations]), e.states, e.actions)
              for e in toy_dataset.episodes),
        toy_dataset.meta,
    )  # fmt: skip
    with pytest.raises(InputError, match=r"obs_dim=2.*obs_dim=4"):
        score_dataset(flow, wider)
    other = DemoDataset(toy_dataset.episodes, {**toy_dataset.meta, "task": "nav_one_obstacle"})
    with pytest.raises(InputError, match=r"task='flow-toy'.*nav_one_obstacle"):
        score_dataset(flow, other)
    slower = DemoDataset(toy_dataset.episodes, {**toy_dataset.meta, "dt": 0.05})
    with pytest.raises(InputError, match="dt"):
        score_dataset(flow, slower)


def test_too_few_episodes_for_the_folds_is_refused(toy_dataset: DemoDataset) -> None:
    with pytest.raises(ValueError, match="2 episodes a fold"):
        cross_fit(subset(toy_dataset, range(5)), folds=3, progress=False)


def test_cli_check_with_a_flow_and_its_errors(
    trained_flow: tuple[ChunkFlow, FlowHistory],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flow, _ = trained_flow
    flow_dir = tmp_path / "flow"
    save_flow(flow, flow_dir)
    data = with_straight(make_toy_dataset(n_demos=16, seed=5))
    data.save(tmp_path / "mixed.npz")
    clean = tmp_path / "clean.npz"
    argv = ["data", "check", str(tmp_path / "mixed.npz"), "--flow", str(flow_dir), "--json"]
    assert main([*argv, "--write-clean", str(clean), "--out", str(tmp_path / "r.json")]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"flagged": [16, 17]' in summary
    assert len(DemoDataset.load(clean).episodes) == 16
    # bad input: one line, exit 2, naming the fix
    assert main(["data", "check", str(tmp_path / "missing.npz"), "--flow", str(flow_dir)]) == 2
    assert "no demonstration file" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path / "mixed.npz"), "--flow", str(tmp_path)]) == 2
    assert "imle-mpc train --model flow" in capsys.readouterr().err
    other = DemoDataset(data.episodes, {**data.meta, "task": "nav_one_obstacle"})
    other.save(tmp_path / "other.npz")
    assert main(["data", "check", str(tmp_path / "other.npz"), "--flow", str(flow_dir)]) == 2
    assert "trained for task='flow-toy'" in capsys.readouterr().err
