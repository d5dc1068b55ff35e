"""PolicyCostToGo: the generator's continuation past the horizon, and what it buys on nav_trap."""

from __future__ import annotations

import numpy as np
import pytest

from cost import CostSum, StateTracking, Term
from dynamics import PointMass2D
from imle_mpc.learn.imle import GeneratorConfig, IMLEGenerator
from imle_mpc.tasks.experts import observation
from planners.cost_to_go import PolicyCostToGo

MODEL = PointMass2D(dt=0.1, max_force=2.0)
GOAL_COST = CostSum(Term("goal", StateTracking(np.array([3.0, 0.0, 0.0, 0.0]), [1, 1, 0, 0])))


def _generator(obs_horizon: int = 2, action_horizon: int = 3) -> IMLEGenerator:
    config = GeneratorConfig(horizon=5, action_horizon=action_horizon, obs_horizon=obs_horizon)
    return IMLEGenerator.untrained(config, obs_dim=4, nu=2, seed=3)


def _reference_continuation(gen: IMLEGenerator, X: np.ndarray, steps: int) -> np.ndarray:
    """One candidate at a time, one chunk at a time: the loop PolicyCostToGo batches.

    Agreement is to 1e-6, not exactly: the float32 network gives last-bit
    differences between a batch of K and one row.
    """
    K, oh = X.shape[0], gen.obs_horizon
    out = np.empty((K, steps + 1, 4))
    for k in range(K):
        past = [X[k, max(X.shape[1] - oh + i, 0)] for i in range(oh)]
        path = [X[k, -1]]
        while len(path) - 1 < steps:
            history = np.stack((past + path[1:])[-oh:])
            chunk = gen.decode(history, np.zeros((1, gen.latent_dim)))[0]
            n = min(gen.action_horizon, steps + 1 - len(path))
            chunk = np.clip(chunk[:n], MODEL.action_low, MODEL.action_high)
            path.extend(MODEL.rollout(path[-1], chunk[None])[0, 1:])
        out[k] = np.stack(path)
    return out


@pytest.mark.parametrize("steps", [1, 3, 7])
@pytest.mark.parametrize("obs_horizon", [1, 2, 3])
def test_continuation_matches_a_per_candidate_loop(steps: int, obs_horizon: int) -> None:
    gen = _generator(obs_horizon=obs_horizon)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 3, 4))
    to_go = PolicyCostToGo(gen, observation, MODEL, GOAL_COST, steps)
    states, actions = to_go.continuation(X)
    assert states.shape == (4, steps + 1, 4) and actions.shape == (4, steps, 2)
    np.testing.assert_allclose(states, _reference_continuation(gen, X, steps), atol=1e-6)
    np.testing.assert_allclose(to_go(X, np.zeros((4, 2, 2))), GOAL_COST(states, actions))


def test_a_rollout_shorter_than_the_history_is_padded_with_its_first_state() -> None:
    gen = _generator(obs_horizon=3)
    X = np.random.default_rng(1).normal(size=(2, 1, 4))
    states, _ = PolicyCostToGo(gen, observation, MODEL, GOAL_COST, 4).continuation(X)
    np.testing.assert_allclose(states, _reference_continuation(gen, X, 4), atol=1e-6)


def test_a_diverged_candidate_costs_inf_and_leaves_the_others_alone() -> None:
    gen = _generator()
    X = np.random.default_rng(2).normal(size=(3, 3, 4))
    to_go = PolicyCostToGo(gen, observation, MODEL, GOAL_COST, 6)
    clean = to_go(X, np.zeros((3, 2, 2)))
    X[1, -1, 0] = np.nan
    poisoned = to_go(X, np.zeros((3, 2, 2)))
    assert poisoned[1] == np.inf
    np.testing.assert_allclose(poisoned[[0, 2]], clean[[0, 2]])


def test_bad_arguments_name_the_fix() -> None:
    with pytest.raises(ValueError, match="steps"):
        PolicyCostToGo(_generator(), observation, MODEL, GOAL_COST, 0)

    class NoBatch:
        horizon, action_horizon, obs_horizon, latent_dim = 5, 3, 2, 10

    with pytest.raises(TypeError, match="decode_batch"):
        PolicyCostToGo(NoBatch(), observation, MODEL, GOAL_COST, 4)  # type: ignore[arg-type]


def test_rollout_from_states_matches_one_rollout_per_start() -> None:
    rng = np.random.default_rng(4)
    X0 = rng.normal(size=(5, 4))
    U = rng.normal(size=(5, 6, 2))
    batched = MODEL.rollout_from_states(X0, U)
    for k in range(5):
        np.testing.assert_allclose(batched[k], MODEL.rollout(X0[k], U[k : k + 1])[0])
    with pytest.raises(ValueError, match="one start per action sequence"):
        MODEL.rollout_from_states(X0[:4], U)


def test_models_without_batched_starts_give_the_same_continuation() -> None:
    """Any Dynamics works: without rollout_from_states it is one rollout per candidate."""

    class PlainModel:  # only the Dynamics protocol
        nx, nu, dt = 4, 2, MODEL.dt
        action_low, action_high = MODEL.action_low, MODEL.action_high

        def rollout(self, x0: np.ndarray, U: np.ndarray, out: None = None) -> np.ndarray:
            return MODEL.rollout(x0, U)

    gen = _generator()
    X = np.random.default_rng(5).normal(size=(3, 3, 4))
    X[2, -1, 1] = np.nan
    fast = PolicyCostToGo(gen, observation, MODEL, GOAL_COST, 5).continuation(X)[0]
    plain = PolicyCostToGo(gen, observation, PlainModel(), GOAL_COST, 5).continuation(X)[0]
    np.testing.assert_allclose(plain, fast, atol=1e-12)
    assert np.isnan(plain[2, 1:]).all()


def _per_state(x: np.ndarray) -> np.ndarray:
    """The documented kind of observation function: one state in, one vector out."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (4,):
        raise ValueError(f"one state at a time, got shape {x.shape}")
    return x.copy()


def test_a_per_state_observation_function_is_called_per_state() -> None:
    gen = _generator()
    X = np.random.default_rng(5).normal(size=(4, 3, 4))
    per_state = PolicyCostToGo(gen, _per_state, MODEL, GOAL_COST, 5).continuation(X)
    batched = PolicyCostToGo(gen, observation, MODEL, GOAL_COST, 5).continuation(X)
    np.testing.assert_array_equal(per_state[0], batched[0])
    np.testing.assert_array_equal(per_state[1], batched[1])


def test_a_declared_batch_observation_gets_one_call_per_chunk() -> None:
    from imle_mpc.tasks.experts import StateObservation

    class Counting(StateObservation):
        def __init__(self) -> None:
            self.batch_calls = 0

        def __call__(self, state):  # type: ignore[no-untyped-def]
            raise AssertionError("a batch observation is not called per state")

        def observe_batch(self, states):  # type: ignore[no-untyped-def]
            self.batch_calls += 1
            return np.array(states, dtype=np.float64)

    obs = Counting()
    PolicyCostToGo(_generator(action_horizon=3), obs, MODEL, GOAL_COST, 6).continuation(
        np.zeros((4, 3, 4))
    )
    assert obs.batch_calls == 2  # 6 steps in chunks of 3


def test_imle_mpc_with_the_lookahead_plans_with_a_per_state_observation() -> None:
    from planners.imle import IMLEMPC, IMLEMPCConfig, IMLEProposals, Lookahead

    gen = _generator()
    config = IMLEMPCConfig(
        horizon=5, num_samples=9, proposals=IMLEProposals(num_imle=4), lookahead=Lookahead(4)
    )
    planner = IMLEMPC(MODEL, GOAL_COST, gen, _per_state, config)
    result = planner.plan(np.zeros(4))
    assert result.actions.shape == (5, 2) and np.all(np.isfinite(result.actions))
    assert "cost_to_go" in result.term_costs


@pytest.mark.parametrize("hard", [True, False], ids=["hard", "soft"])
@pytest.mark.parametrize("priced", [True, False], ids=["priced", "mechanism-off:no-constraints"])
def test_the_continuation_pays_for_the_constraints_it_breaks(hard: bool, priced: bool) -> None:
    """Protects: constraints priced into the lookahead (``PolicyCostToGo(constraints=...)``).

    A wall at the median of the continuations' largest x: the candidates whose
    continuation crosses it cost exactly ``weight * violation`` more than without the
    wall, the others the same. Without the constraints (the mechanism off) a
    continuation through the wall is as cheap as one that stops short of it.
    """
    from cost import StateBox

    gen = _generator()
    X = np.random.default_rng(6).normal(size=(8, 3, 4))
    free = PolicyCostToGo(gen, observation, MODEL, GOAL_COST, 6)
    states, actions = free.continuation(X)
    wall = float(np.median(states[:, 1:, 0].max(axis=1)))
    box = StateBox([-np.inf] * 4, [wall, np.inf, np.inf, np.inf], hard=hard, weight=50.0)
    walled = PolicyCostToGo(gen, observation, MODEL, GOAL_COST, 6, [box] if priced else [])
    U = np.zeros((8, 2, 2))
    extra = walled(X, U) - free(X, U)
    violation = box.violation(states, actions)
    assert np.count_nonzero(violation) == 4  # half of the continuations cross the wall
    if not priced:
        assert np.all(extra == 0.0)  # blind to the wall: what the mechanism prevents
        return
    weight = 1e4 if hard else 50.0  # PolicyCostToGo's violation_weight, or the soft term's
    np.testing.assert_allclose(extra, weight * violation, rtol=1e-9, atol=1e-9)
