"""Configs reject bad values with messages that name the field."""

from __future__ import annotations

import pytest

from dynamics import Pendulum, PointMass2D
from imle_mpc.eval.refine import RefineConfig
from imle_mpc.learn.config import ResidualSACConfig
from imle_mpc.loop.runner import LoopConfig
from planners import CEMConfig, MPPIConfig, PredictiveSamplingConfig, SamplingConfig


@pytest.mark.parametrize(
    ("factory", "kwargs", "field"),
    [
        (SamplingConfig, {"num_samples": 1}, "num_samples"),
        (SamplingConfig, {"horizon": 0}, "horizon"),
        (SamplingConfig, {"iterations": 0}, "iterations"),
        (SamplingConfig, {"shift": 30, "horizon": 30}, "shift"),
        (SamplingConfig, {"seed": -1}, "seed"),
        (SamplingConfig, {"num_samples": 2.5}, "num_samples"),
        (MPPIConfig, {"temperature": 0.0}, "temperature"),
        (MPPIConfig, {"temperature": float("nan")}, "temperature"),
        (MPPIConfig, {"noise_sigma": -1.0}, "noise_sigma"),
        (CEMConfig, {"num_elites": 1}, "num_elites"),
        (CEMConfig, {"num_elites": 300, "num_samples": 256}, "num_elites"),
        (CEMConfig, {"min_sigma": 0.0}, "min_sigma"),
        (PredictiveSamplingConfig, {"noise_sigma": (0.0,)}, "noise_sigma"),
        (LoopConfig, {"steps": 0}, "steps"),
        (LoopConfig, {"control_period": 0.0}, "control_period"),
        (Pendulum, {"mass": 0.0}, "mass"),
        (Pendulum, {"dt": -0.1}, "dt"),
        (PointMass2D, {"drag": -1.0}, "drag"),
        (PointMass2D, {"max_force": float("inf")}, "max_force"),
        (ResidualSACConfig, {"gamma": 0.0}, "gamma"),
        (ResidualSACConfig, {"train_every": 60}, "train_every"),
        (ResidualSACConfig, {"update_to_data": 0.01}, "update_to_data"),
        (ResidualSACConfig, {"ent_coef": "lots"}, "ent_coef"),
        (ResidualSACConfig, {"n_steps": 0}, "n_steps"),
        (ResidualSACConfig, {"hidden": ()}, "hidden"),
        (RefineConfig, {"base": "oracle"}, "base"),
        (RefineConfig, {"fraction": 0.0}, "fraction"),
        (RefineConfig, {"eval_episodes": 0}, "eval_episodes"),
    ],
)
def test_bad_value_names_field(factory: type, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        factory(**kwargs)


def test_configs_are_frozen() -> None:
    config = MPPIConfig()
    with pytest.raises(AttributeError):
        config.temperature = 2.0  # type: ignore[misc]


def test_planner_refuses_another_planners_config() -> None:
    from cost import ControlEffort
    from planners import CEM, MPPI

    with pytest.raises(TypeError, match="MPPI takes a MPPIConfig, got CEMConfig"):
        MPPI(Pendulum(), ControlEffort(), CEMConfig())
    assert isinstance(CEM(Pendulum(), ControlEffort()).config, CEMConfig)  # default config


def test_one_set_of_defaults_for_training_and_imle_mpc() -> None:
    """The CLI, the factory and the config classes agree: the defaults that work."""
    from imle_mpc.cli import build_parser
    from imle_mpc.eval.factory import make_planner
    from imle_mpc.learn.config import GeneratorConfig, TrainConfig
    from imle_mpc.tasks import make_task
    from planners.imle import IMLEMPCConfig

    args = build_parser().parse_args(["train"])
    train, gen = TrainConfig(), GeneratorConfig()
    assert (args.epochs, args.lr, args.warmup) == (train.epochs, train.lr, train.warmup_steps)
    assert (args.epochs, args.lr, args.warmup) == (400, 1e-3, 100)
    assert (args.batch_size, args.epsilon, args.candidates) == (
        train.batch_size, train.epsilon, train.num_candidates,
    )  # fmt: skip
    # --obs-horizon left out means each model's own default (the generator's, the flow's).
    assert args.obs_horizon is None
    assert (args.horizon, args.action_horizon) == (gen.horizon, gen.action_horizon)
    task = make_task("nav_one_obstacle")
    built = make_planner("imle_mpc", task).config
    default = IMLEMPCConfig()
    assert (
        (built.num_samples, built.num_imle) == (default.num_samples, default.num_imle) == (33, 16)
    )
    assert built.cost_to_go_steps == task.hints.policy_lookahead == 32
