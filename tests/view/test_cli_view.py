"""``imle-mpc run --record`` writes a recording ``view --replay`` reads; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imle_mpc.cli import main
from imle_mpc.view.recording import read_recording
from imle_mpc.view.watch import recording_path
from tests.view.conftest import Recorded


@pytest.mark.slow
def test_run_records_each_episode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ep.npz"
    argv = ["run", "point_mass", "--planner", "mppi", "--samples", "32", "--episodes", "2",
            "--record", str(path), "--max-proposals", "5", "--json"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["recordings"] == [str(tmp_path / "ep_seed0.npz"), str(tmp_path / "ep_seed1.npz")]
    for seed, name in enumerate(summary["recordings"]):
        rec = read_recording(name)
        assert rec.header["task"] == "point_mass" and rec.header["seed"] == seed
        assert rec.proposal_states.shape[1] == 5 and np.all(rec.proposal_count == 5)


def test_recording_paths() -> None:
    assert recording_path("a/ep.npz", 3, 1) == Path("a/ep.npz")
    assert recording_path("a/ep.npz", 3, 4) == Path("a/ep_seed3.npz")


def test_view_wants_a_task_or_a_replay(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view"]) == 2
    assert "give a TASK to watch live, or --replay FILE" in capsys.readouterr().err


def test_a_bad_replay_is_one_line(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["view", "--replay", str(tmp_path / "none.npz")]) == 2
    assert capsys.readouterr().err.strip().startswith("imle-mpc: error: no recording at")
    assert main(["view", "--replay", str(recorded.path), "--step", "999"]) == 2
    assert "--step 999: the recording has steps 0..39" in capsys.readouterr().err


def test_view_refuses_real_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "point_mass", "--view", "--real-time"]) == 2
    assert "drop --real-time" in capsys.readouterr().err


def test_the_live_view_follows_an_episode() -> None:
    pytest.importorskip("viser", reason="the view extra (viser) serves the live view")
    from imle_mpc.eval.episodes import run_episode
    from imle_mpc.eval.factory import make_planner
    from imle_mpc.tasks import load_task
    from imle_mpc.view.server import LiveView

    task = load_task("nav_one_obstacle")
    view = LiveView(task, port=0, max_proposals=8)
    try:
        assert view.server.get_host() == "127.0.0.1"
        planner = make_planner("mppi", task, seed=0, num_samples=32, record_samples=True)
        record = run_episode(task, planner, 0, guard=True, steps=6, observer=view)
        assert len(view.recorder) == record.steps == 6
        assert int(view.slider.value) == 5 and view.slider.max == 5  # it follows the last step
        assert view._plot_names == sorted(record.term_costs)
        view.start_episode()  # the next episode starts afresh
        assert len(view.recorder) == 0
    finally:
        view.close()
