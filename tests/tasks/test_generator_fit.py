"""A generator records the model it was trained for, and a model it does not fit is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dynamics import PointMass2D
from imle_mpc.core.errors import InputError
from imle_mpc.learn.imle import TrainedFor, load_generator, save_generator
from imle_mpc.tasks import make_task
from imle_mpc.tasks.shipped import shipped_generators


@pytest.mark.parametrize("name", shipped_generators())
def test_every_shipped_generator_records_its_model_and_fits_its_task(name: str) -> None:
    task = make_task(name)
    generator = task.load_generator()  # checks the fit
    fit = generator.trained_for
    assert fit.task == name and fit.observation == "state"
    assert fit.dt == pytest.approx(task.dynamics.dt)
    np.testing.assert_allclose(fit.action_high, task.dynamics.action_high)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            PointMass2D(mass=1.0, drag=0.5, dt=0.05, max_force=2.0),
            r"trained for dt=0\.1 s but the planner's model has dt=0\.05 s",
        ),
        (
            PointMass2D(mass=1.0, drag=0.5, dt=0.1, max_force=3.0),
            r"action_low=\[-2\.0, -2\.0\].*action_low=\[-3\.0, -3\.0\]",
        ),
    ],
    ids=["another dt", "another actuator box"],
)
def test_a_generator_for_another_model_is_refused_naming_both(
    model: PointMass2D, message: str
) -> None:
    task = dataclasses.replace(make_task("nav_one_obstacle"), dynamics=model)
    with pytest.raises(InputError, match=message):
        task.load_generator()


def test_a_generator_for_another_state_size_is_refused() -> None:
    generator = make_task("nav_one_obstacle").load_generator()
    arm = make_task("arm_reach_around").dynamics  # nx 4 too, but another dt: check the size alone
    bigger = dataclasses.replace(arm, dt=0.1)
    fit = dataclasses.replace(generator.trained_for, action_low=None, action_high=None)
    fit.check(bigger, obs_dim=4)  # same size: fine
    with pytest.raises(InputError, match=r"obs_dim=6\) but the planner's model has nx=4"):
        fit.check(bigger, obs_dim=6)


def test_what_it_was_trained_for_survives_the_checkpoint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    generator = make_task("nav_trap").load_generator()
    path = save_generator(generator, tmp_path / "g.safetensors")
    assert load_generator(path).trained_for == generator.trained_for
    assert (
        TrainedFor.from_meta({}).dt is None
    )  # an old checkpoint: nothing recorded, nothing checked
    TrainedFor().check(make_task("arm_reach_around").dynamics, obs_dim=99)


def test_each_shipped_generator_records_the_shipped_demonstrations_it_was_trained_on() -> None:
    """Ties a shipped generator to the shipped demonstrations: the checkpoint's
    ``TrainedFor`` (task, control period, observation, actuator box) is the one read from
    the shipped dataset's metadata, and the dataset's routes are all routes the
    generator drives (``tests/planners/test_imle_mpc_closed_loop.py`` checks the shares
    on whole runs). A dataset regenerated for another model, or a generator trained on
    another task's demonstrations, fails here."""
    from imle_mpc.tasks.shipped import load_default_dataset, load_task_generator

    for name in shipped_generators():
        dataset = load_default_dataset(name)
        generator = load_task_generator(name)
        assert generator.trained_for == TrainedFor.from_meta(dataset.meta), name
        assert generator.trained_for.task == dataset.meta["task"] == name
        assert (generator.obs_dim, generator.nu) == (dataset.obs_dim, dataset.nu)
        task = make_task(name)
        if task.routes is not None:
            assert set(dataset.meta["modes"]) <= set(task.route_names), name
