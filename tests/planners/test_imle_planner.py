"""IMLE-MPC planner logic with a stand-in generator (the trained one is tested in tests/imle)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cost import ControlEffort, CostSum, StateTracking, Term, TerminalState
from dynamics import PointMass2D
from imle_mpc.core.plan_reference import PlanReference
from planners.imle import (
    IMLEMPC,
    ArgminSelection,
    ConsistencyCost,
    IMLEMPCConfig,
    IMLEProposals,
    LatentIMLEMPC,
    LatentPlanConfig,
    Lookahead,
    ModeAwareSelector,
    ModeSoftmaxSelection,
    ObservationHistory,
    SoftmaxRefit,
)

H = 16


class TwoModeGenerator:
    """Stand-in ChunkGenerator: the sign of latent 0 picks 'push up' or 'push down' (+x drive).

    Deterministic given the latents, so the planner's RNG governs everything.
    """

    horizon, nu, obs_horizon, obs_dim = H, 2, 2, 4
    latent_dim = H * 2

    def __init__(self) -> None:
        self.calls = 0
        self.last_history: np.ndarray | None = None

    def decode(self, obs_history: np.ndarray, z: np.ndarray) -> np.ndarray:
        self.last_history = obs_history.copy()
        side = np.where(z[:, :1] >= 0, 1.0, -1.0)
        chunks = np.empty((z.shape[0], H, 2))
        chunks[:, :, 0] = 1.0 + 0.05 * z[:, 1:2]
        chunks[:, :, 1] = side * (1.0 + 0.05 * z[:, 2:3])
        return chunks

    def sample(self, obs_history: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        self.calls += 1
        return self.decode(obs_history, rng.standard_normal((n, self.latent_dim)))


def _cost() -> CostSum:
    goal = np.array([3.0, 0.0, 0.0, 0.0])
    return CostSum(
        Term("goal", StateTracking(goal, [1, 1, 0, 0])), Term("effort", ControlEffort(), 0.01)
    )


def _planner(**overrides) -> tuple[IMLEMPC, TwoModeGenerator]:
    gen = TwoModeGenerator()
    config = IMLEMPCConfig(horizon=H, num_samples=24, num_imle=8, **overrides)
    return IMLEMPC(PointMass2D(), _cost(), gen, lambda x: x, config), gen


def test_one_generator_pass_per_step_and_row_layout() -> None:
    planner, gen = _planner(record_samples=True, num_gaussian=4)
    calls_before = gen.calls
    result = planner.plan(np.zeros(4))
    assert gen.calls == calls_before + 1  # ONE batched forward pass
    U = result.samples[0]
    np.testing.assert_array_equal(U[0], np.zeros((H, 2)))  # row 0: the warm start
    assert np.all(np.abs(U[1:9, :, 1]) > 0.8)  # IMLE rows have a clear side


def test_shift_alignment_compares_the_right_steps() -> None:
    for k in (1, 3):
        planner, _ = _planner(shift=k, consistency_weight=1.0)
        x = np.zeros(4)
        first = planner.plan(x)
        planner.plan(x)
        ref = planner.reference
        assert ref.overlap == H - k
        # New step t is compared with old step t + k: the old chunk's steps k..H-1.
        np.testing.assert_allclose(ref.plan[: H - k], first.actions[k:])
        assert ref.active


def test_consistency_keeps_the_mode() -> None:
    planner, _ = _planner(consistency_weight=5.0)
    model = PointMass2D()
    x = np.zeros(4)
    sides = []
    for _ in range(25):
        res = planner.plan(x)
        sides.append(np.sign(res.actions[:, 1].sum()))
        x = model.step(x, res.action)
    assert len(set(sides)) == 1, sides


def test_a_stale_warm_start_is_replaced_by_a_fresh_chunk() -> None:
    # Huge consistency: the warm start (row 0) would win forever, held tail and all.
    planner, _ = _planner(consistency_weight=1e6, max_plan_age=3, record_samples=True)
    x = np.zeros(4)
    row0_is_nominal = []
    for _ in range(8):
        nominal = planner.nominal
        result = planner.plan(x)
        shifted = np.concatenate([nominal[1:], nominal[-1:]])
        row0_is_nominal.append(bool(np.array_equal(result.samples[0][0], shifted)))
    # The plan chosen at step 0 is executed at steps 0, 1, 2; at step 3 a chunk replaces it.
    assert row0_is_nominal[1:3] == [True, True]
    assert row0_is_nominal[3] is False
    forever, _ = _planner(consistency_weight=1e6, max_plan_age=None, record_samples=True)
    for _ in range(8):
        nominal = forever.nominal
        result = forever.plan(x)
    np.testing.assert_array_equal(result.samples[0][0], np.concatenate([nominal[1:], nominal[-1:]]))


def test_allow_switch_drops_consistency_for_one_step() -> None:
    planner, _ = _planner(consistency_weight=1.0)
    planner.plan(np.zeros(4))
    planner.allow_switch()
    r = planner.plan(np.zeros(4))
    assert r.term_costs["consistency"] == 0.0 and not planner.reference.active
    planner.plan(np.zeros(4))
    assert planner.reference.active


def test_the_reference_is_made_per_step_and_passed_with_the_rollouts() -> None:
    planner, _ = _planner(consistency_weight=1.0)
    x = np.zeros(4)
    first = planner.plan(x)
    before = planner.reference
    assert before is not None
    kept = before.plan.copy()
    second = planner.plan(x)
    after = planner.reference
    assert after is not before  # a fresh reference each step, none changed behind the cost
    np.testing.assert_array_equal(before.plan, kept)
    np.testing.assert_array_equal(after.plan[:-1], first.actions[1:])
    # The consistency charged is the term read against the reference handed to the cost.
    charged = ConsistencyCost().with_reference(np.zeros((1, H + 1, 4)), second.actions[None], after)
    assert second.term_costs["consistency"] == pytest.approx(1.0 * charged[0])


def test_consistency_without_a_reference_costs_nothing() -> None:
    U = np.ones((3, H, 2))
    X = np.zeros((3, H + 1, 4))
    term = ConsistencyCost()
    np.testing.assert_array_equal(term(X, U), np.zeros(3))
    reference = PlanReference(np.zeros((H, 2)), overlap=H - 1, active=True)
    np.testing.assert_array_equal(term.with_reference(X, U, reference), np.full(3, 2.0 * (H - 1)))
    cost = CostSum(Term("consistency", term, 0.5), Term("effort", ControlEffort(), 1.0))
    total, parts = cost.evaluate(X, U, reference)
    np.testing.assert_allclose(parts["consistency"], np.full(3, H - 1.0))
    np.testing.assert_allclose(total, parts["consistency"] + parts["effort"])
    np.testing.assert_array_equal(cost.evaluate(X, U)[1]["consistency"], np.zeros(3))


def test_observation_history_pads_then_rolls() -> None:
    hist = ObservationHistory(3, 2)
    hist.push(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(hist.array, [[1, 1], [1, 1], [1, 1]])
    hist.push(np.array([2.0, 2.0]))
    np.testing.assert_array_equal(hist.array, [[1, 1], [1, 1], [2, 2]])
    planner, gen = _planner()
    planner.plan(np.array([0.5, 0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(gen.last_history[:, 0], [0.5, 0.5])


def test_mode_aware_selector_never_averages_two_modes() -> None:
    rng = np.random.default_rng(0)
    up = np.ones((6, H, 2)) + 0.01 * rng.standard_normal((6, H, 2))
    down = -up
    U = np.concatenate([up, down])
    costs = np.concatenate([np.linspace(1.0, 1.05, 6), np.linspace(1.001, 1.051, 6)])
    sel = ModeAwareSelector(10.0, 12, 0.25, -2 * np.ones(2), 2 * np.ones(2))
    out = np.empty((H, 2))
    assert sel.select(U, costs, out) == 0
    assert sel.last_mode_size == 6
    assert np.all(out > 0.9)  # a plain softmax over all 12 would give ~0


def test_mode_softmax_planner_runs() -> None:
    planner, _ = _planner(selection="mode_softmax", num_elites=6)
    res = planner.plan(np.zeros(4))
    assert res.feasible and abs(res.actions[:, 1].mean()) > 0.5


def test_latent_planner_stays_in_the_box_and_improves() -> None:
    gen = TwoModeGenerator()
    config = LatentPlanConfig(horizon=H, num_samples=32, num_elites=6, latent_bound=1.5)
    planner = LatentIMLEMPC(PointMass2D(), _cost(), gen, lambda x: x, config)
    res = planner.plan(np.zeros(4))
    sampler = planner.sampler
    assert np.all(np.abs(sampler._z) <= 1.5)
    assert res.feasible


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_imle": 0}, "num_imle"),
        ({"num_imle": 30, "num_samples": 24}, "num_samples"),
        ({"selection": "mean"}, "selection"),
        ({"perturb_sigma": -1.0}, "perturb_sigma"),
    ],
)
def test_config_errors_name_the_field(kwargs, field) -> None:
    with pytest.raises(ValueError, match=field):
        IMLEMPCConfig(**{"horizon": H, "num_samples": 24, "num_imle": 8, **kwargs})


def test_config_parts_and_the_one_piece_keywords_agree() -> None:
    flat = IMLEMPCConfig(
        horizon=H, num_samples=24, num_imle=8, num_gaussian=2, max_plan_age=None,
        consistency_weight=0.5, selection="mode_softmax", num_elites=6, cost_to_go_steps=4,
    )  # fmt: skip
    parts = IMLEMPCConfig(
        horizon=H, num_samples=24,
        proposals=IMLEProposals(num_imle=8, num_gaussian=2, max_plan_age=None,
                                consistency_weight=0.5),
        selector=ModeSoftmaxSelection(num_elites=6), lookahead=Lookahead(steps=4),
    )  # fmt: skip
    assert flat == parts and hash(flat) == hash(parts)
    assert (flat.num_imle, flat.num_gaussian, flat.max_plan_age) == (8, 2, None)
    assert (flat.selection, flat.num_elites, flat.cost_to_go_steps) == ("mode_softmax", 6, 4)
    assert IMLEMPCConfig().selector == ArgminSelection() and IMLEMPCConfig().max_plan_age == 8
    # A keyword overrides its part; replace() takes either.
    assert replace(parts, num_imle=4).proposals.num_imle == 4
    assert replace(parts, selection="argmin").selector == ArgminSelection()
    assert replace(parts, seed=3).seed == 3
    with pytest.raises(ValueError, match="num_samples"):
        IMLEMPCConfig(horizon=H, num_samples=24, proposals=IMLEProposals(num_imle=30))
    with pytest.raises(ValueError, match="temperature"):
        ModeSoftmaxSelection(temperature=0.0)
    with pytest.raises(ValueError, match="cost_to_go_steps"):
        IMLEMPCConfig(cost_to_go_steps=-1)


def test_mismatched_generator_is_refused() -> None:
    with pytest.raises(ValueError, match="horizon=16"):
        IMLEMPC(
            PointMass2D(),
            _cost(),
            TwoModeGenerator(),
            lambda x: x,
            IMLEMPCConfig(horizon=10, num_samples=24, num_imle=8),
        )
    planner_gen = TwoModeGenerator()
    planner_gen.nu = 3
    with pytest.raises(ValueError, match="nu=2"):
        IMLEMPC(
            PointMass2D(),
            _cost(),
            planner_gen,
            lambda x: x,
            IMLEMPCConfig(horizon=H, num_samples=24, num_imle=8),
        )
    planner, _ = _planner()
    planner.sampler.history.observation_fn = lambda x: x[:2]
    with pytest.raises(ValueError, match="observation_fn"):
        planner.plan(np.zeros(4))


class LinearLatentGenerator:
    """Stand-in generator: the chunk is latents 0-1 held as a constant force, (H, 2)."""

    horizon, nu, obs_horizon, obs_dim = H, 2, 1, 4
    latent_dim = 2

    def decode(self, obs_history: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.repeat(z[:, None, :2], H, axis=1).copy()

    def sample(self, obs_history: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.decode(obs_history, rng.standard_normal((n, self.latent_dim)))


def test_latent_cem_moves_its_mean_to_the_latent_that_reaches_the_goal() -> None:
    """Protects: ``LatentCEMSampler.update`` (the elite refit of the latent mean and std).

    The goal is where the constant force z* = (0.75, -0.4) ends the horizon. Five CEM
    rounds of 32 samples refit the mean to within 0.1 of z* (measured 0.006, sigma at
    its 0.05 floor); without the refit the mean stays at the prior's 0, 0.85 away.
    """
    z_star = np.array([0.75, -0.4])
    model = PointMass2D(max_force=2.0)
    end = model.rollout(np.zeros(4), np.tile(z_star, (1, H, 1)))[0, -1]
    cost = CostSum(Term("goal", TerminalState(end, [1, 1, 0, 0])))
    config = LatentPlanConfig(
        horizon=H, num_samples=32, num_elites=6, iterations=5, latent_bound=2.0, seed=0
    )
    planner = LatentIMLEMPC(model, cost, LinearLatentGenerator(), lambda x: x, config)
    result = planner.plan(np.zeros(4))
    assert np.linalg.norm(planner.sampler.mean - z_star) < 0.1, planner.sampler.mean
    assert np.all(planner.sampler.sigma < 0.5)  # the refit narrowed the search
    np.testing.assert_allclose(result.actions[0], z_star, atol=0.1)
    # The mean carries over to the next control step (the mode is kept without a cost).
    planner.plan(np.zeros(4))
    assert np.linalg.norm(planner.sampler.mean - z_star) < 0.1


def test_imle_policy_keeps_the_mode_of_its_previous_chunk() -> None:
    """Protects: ``IMLEPolicy._closest_to_previous`` (the consistency rule).

    Every re-sample draws chunks of both sides (``TwoModeGenerator``); the policy keeps
    the one closest to the rest of its previous chunk, so all ten decisions of a
    40-step run take the first one's side. Taking row 0 instead picks each side with
    probability 1/2 per decision (measured with seed 0: the side flips 6 times).
    """
    from planners.imle import IMLEPolicy

    gen = TwoModeGenerator()
    policy = IMLEPolicy(gen, lambda x: x, num_samples=8, action_horizon=4, seed=0)
    sides = []
    for _ in range(40):
        plan = policy.plan(np.zeros(4))
        if policy.player.executed == 1:  # a new chunk was drawn this step
            sides.append(np.sign(plan.actions[0, 1]))
    assert len(sides) == 10 and gen.calls == 10
    assert len(set(sides)) == 1, sides


def test_imle_policy_compares_the_unexecuted_rest_of_the_previous_chunk() -> None:
    """``_closest_to_previous`` aligns the new chunk's start with the old chunk's step k."""
    from planners.imle import IMLEPolicy

    policy = IMLEPolicy(TwoModeGenerator(), lambda x: x, num_samples=3, action_horizon=2)
    previous = np.zeros((H, 2))
    previous[2:] = 1.0  # after 2 executed steps, the rest is all ones
    policy.player.load(previous)
    policy.player.next_plan()
    policy.player.next_plan()
    chunks = np.zeros((3, H, 2))
    chunks[1, : H - 2] = 1.0  # matches the rest exactly; row 2 matches the executed part
    chunks[2, :2] = 0.0
    chunks[2, 2:] = 1.0
    assert policy._closest_to_previous(chunks) == 1


def test_perturbed_rows_are_their_parent_chunks_plus_noise_and_gaussian_rows_the_nominal() -> None:
    """Protects: IMLE-MPC's row layout beyond the IMLE chunks. Of K=24 rows: row 0 the
    warm start, 1-8 the chunks, 9-19 perturbations of chunk (i mod 8) with std
    ``perturb_sigma``, 20-23 the warm start plus noise of std ``gaussian_sigma``.
    The sample std of 352 (176) noise values is within 12 % of the true one at ~4 sd."""
    planner, _ = _planner(record_samples=True, num_gaussian=4, perturb_sigma=0.1,
                          gaussian_sigma=0.3)  # fmt: skip
    planner.set_nominal(np.full((H, 2), 0.2))  # inside the box: no clipping of its noise
    U = planner.plan(np.zeros(4)).samples[0]
    np.testing.assert_array_equal(U[0], np.full((H, 2), 0.2))
    perturbed = U[9:20] - U[1 + np.arange(11) % 8]
    assert abs(perturbed.std() / 0.1 - 1.0) < 0.12, perturbed.std()
    assert abs(perturbed.mean()) < 0.02
    gaussian = U[20:] - 0.2
    assert abs(gaussian.std() / 0.3 - 1.0) < 0.12, gaussian.std()
    assert abs(gaussian.mean()) < 0.08  # ~3 sd of the mean of the 128 values
    # The Gaussian rows have no side (the noise is around the warm start, not a chunk).
    assert np.all(np.abs(U[20:, :, 1].mean(axis=1)) < 0.3)


def test_knot_gaussian_rows_are_splines_in_the_same_batch_as_the_chunks() -> None:
    """Protects: with ``knots`` IMLE-MPC's Gaussian rows are spline knots around the warm
    start's knots, expanded to per-step rows in the one batch; the warm start, chunks and
    perturbed rows are those of the per-step planner (the same seed, drawn first)."""
    from planners.knots import KnotSchedule

    rows = {"record_samples": True, "num_gaussian": 4, "gaussian_sigma": 0.3}
    planners = [_planner(**rows)[0], _planner(**rows, knots=4, interpolation="linear")[0]]
    batches = []
    for planner in planners:
        planner.set_nominal(np.full((H, 2), 0.2))
        batches.append(planner.plan(np.zeros(4)).samples[0])
    per_step, knotted = batches
    assert knotted.shape == per_step.shape == (24, H, 2)
    np.testing.assert_array_equal(knotted[:20], per_step[:20])
    knots = KnotSchedule(4, H, "linear")
    for row in knotted[20:]:
        spline = knots.basis @ knots.fit(row, np.zeros((4, 2)))
        np.testing.assert_allclose(spline, row, atol=1e-12)  # a line through 4 knots
    for row in per_step[20:]:  # per-step noise is not (the check can fail)
        assert np.abs(knots.basis @ knots.fit(row, np.zeros((4, 2))) - row).max() > 0.1
    assert abs((knotted[20:] - 0.2).std() / 0.3 - 1.0) < 0.35  # the noise is the knots'


def test_latent_mppi_moves_its_mean_to_the_softmax_average() -> None:
    """Protects: ``SoftmaxRefit`` (MPPI in the latent). With a small temperature the mean
    goes to the cheapest latents, within 0.15 of z* after five rounds; the std stays at
    ``init_sigma`` (MPPI does not refit it). Without the update the mean stays at 0."""
    z_star = np.array([0.75, -0.4])
    model = PointMass2D(max_force=2.0)
    end = model.rollout(np.zeros(4), np.tile(z_star, (1, H, 1)))[0, -1]
    cost = CostSum(Term("goal", TerminalState(end, [1, 1, 0, 0])))
    config = LatentPlanConfig(
        horizon=H, num_samples=32, iterations=5, init_sigma=0.3, seed=0,
        update=SoftmaxRefit(temperature=1e-3),
    )  # fmt: skip
    planner = LatentIMLEMPC(model, cost, LinearLatentGenerator(), lambda x: x, config)
    planner.plan(np.zeros(4))
    assert np.linalg.norm(planner.sampler.mean - z_star) < 0.15, planner.sampler.mean
    np.testing.assert_array_equal(planner.sampler.sigma, 0.3)
    with pytest.raises(TypeError, match="EliteRefit"):
        LatentPlanConfig(horizon=H, update="mppi")  # type: ignore[arg-type]
