"""Episode recordings: what a step's proposals were, written and read back, versioned.

Mechanism protected: ``Recorder`` (the episode observer) keeps the cheapest proposal and
rolls the kept ones out from the step's state; ``write_recording`` is atomic and
``read_recording`` refuses another format or version with a message naming it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from imle_mpc.core.errors import InputError
from imle_mpc.view.recording import (
    RECORDING_ARRAYS,
    RECORDING_VERSION,
    keep_proposals,
    read_recording,
    write_recording,
)
from tests.conftest import REPO
from tests.view.conftest import KEEP, STEPS, Recorded


def test_a_recording_reads_back_as_written(recorded: Recorded) -> None:
    back = read_recording(recorded.path)
    assert back.header == json.loads(json.dumps(recorded.recording.header))
    for name in RECORDING_ARRAYS:
        want, got = getattr(recorded.recording, name), getattr(back, name)
        assert got.shape == want.shape, name
        if want.dtype.kind == "f":
            np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=name)
        else:
            assert (got == want).all(), name
    assert back.steps == STEPS and back.header["version"] == RECORDING_VERSION


def test_the_recording_is_the_episode_that_ran(recorded: Recorded) -> None:
    rec, record = recorded.recording, recorded.record
    np.testing.assert_array_equal(rec.states, record.states)
    np.testing.assert_array_equal(rec.actions, record.actions)
    assert list(rec.fallbacks) == list(record.fallbacks)
    # the walled-off passage: the guard stepped in, and some proposals were infeasible
    assert (rec.fallbacks != "").sum() == record.fallback_steps > 0
    assert np.isinf(rec.proposal_costs).any()
    for t, result in enumerate(recorded.results):
        np.testing.assert_array_equal(rec.plans[t, : len(result.actions)], result.actions)


def test_the_kept_proposals_are_the_steps_own_rolled_out(recorded: Recorded) -> None:
    rec, dynamics = recorded.recording, recorded.task.dynamics
    for t in (0, STEPS // 2, STEPS - 1):
        assert recorded.results[t].samples is not None
        U, costs = recorded.results[t].samples
        kept = keep_proposals(costs, KEEP)
        assert rec.proposal_count[t] == len(kept) == KEEP < len(costs)
        np.testing.assert_array_equal(rec.proposal_costs[t], costs[kept])
        if np.isfinite(costs).any():  # the cheapest proposal is always drawn
            assert np.nanmin(rec.proposal_costs[t]) == costs[np.isfinite(costs)].min()
        X = dynamics.rollout(recorded.states[t], np.ascontiguousarray(U[kept]))
        np.testing.assert_allclose(rec.proposal_states[t], X, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("K", "limit"), [(5, 8), (33, 16), (1024, 64), (100, 1), (70, 69)])
def test_keep_proposals_keeps_the_cheapest_and_the_limit(K: int, limit: int) -> None:
    costs = np.random.default_rng(K).permutation(
        np.r_[np.full(K // 3, np.inf), np.arange(K - K // 3)]
    )
    kept = keep_proposals(costs, limit)
    assert len(kept) == min(K, limit) and len(np.unique(kept)) == len(kept)
    assert int(np.argmin(costs)) in kept


def _rewrite_header(src, dst, **changes) -> None:  # type: ignore[no-untyped-def]
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(str(arrays.pop("header")))
    header.update(changes)
    np.savez(dst, header=np.array(json.dumps(header)), **arrays)


def test_another_version_is_refused_with_what_to_do(recorded: Recorded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    newer = tmp_path / "newer.npz"
    _rewrite_header(recorded.path, newer, version=RECORDING_VERSION + 1)
    with pytest.raises(
        InputError,
        match=rf"version {RECORDING_VERSION + 1}, but this imle_mpc "
        rf"reads version {RECORDING_VERSION}: record the episode again",
    ):
        read_recording(newer)
    other = tmp_path / "other.npz"
    _rewrite_header(recorded.path, other, format="something.else")
    with pytest.raises(InputError, match=r"'something\.else' file, not an episode recording"):
        read_recording(other)


def test_an_episode_record_is_not_a_recording(recorded: Recorded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = recorded.record.save(tmp_path / "record.npz")
    with pytest.raises(InputError, match="no recording header"):
        read_recording(path)
    with pytest.raises(InputError, match="no recording at"):
        read_recording(tmp_path / "missing.npz")


class _Unsaveable:
    """An array whose conversion fails: a crash in the middle of writing."""

    def __array__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")


def test_a_failed_write_leaves_the_old_file_whole(recorded: Recorded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write_recording(tmp_path / "ep.npz", recorded.recording)
    before = path.read_bytes()
    broken = type(recorded.recording)(**{**recorded.recording.__dict__, "plans": _Unsaveable()})
    with pytest.raises(RuntimeError, match="disk full"):
        write_recording(path, broken)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.npz"]  # no temporary left
    read_recording(path)


def test_the_docs_document_every_array() -> None:
    guide = (REPO / "docs" / "guides" / "control.md").read_text()
    section = guide[guide.index("## Browser view") :]
    rows = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    assert set(RECORDING_ARRAYS) <= rows, set(RECORDING_ARRAYS) - rows
