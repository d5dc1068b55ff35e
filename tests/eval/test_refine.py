"""imle-mpc refine and eval --residual: the command, the checkpoint, the guard accounting; a run
killed with SIGKILL resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imle_mpc.cli import main

pytest.importorskip("stable_baselines3")

TINY = ["--steps", "256", "--envs", "2", "--learning-starts", "64", "--batch-size", "32",
        "--eval-every", "128", "--eval-episodes", "1", "--checkpoint-every", "128"]  # fmt: skip
REPO = Path(__file__).resolve().parents[2]


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_refine_then_eval_the_residual(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "residual"
    assert main(["refine", *TINY, "--scale", "0.2", "--out", str(out), "--json"]) == 0
    summary = _last_json(capsys)
    assert summary["setting"] == "heavy" and summary["base"] == "imle_policy"
    assert (out / "residual.safetensors").is_file() and (out / "checkpoint.json").is_file()
    curve = json.loads((out / "history.json").read_text())["evaluations"]
    assert [e["step"] for e in curve] == [0, 128, 256]  # the learning curve, from the start
    assert all({"success_rate", "violation_steps", "fallback_steps"} <= set(e) for e in curve)
    args = ["eval", "--residual", str(out), "--episodes", "2", "--json"]
    assert main(args) == 0
    result = _last_json(capsys)
    assert result["planner"] == "imle_policy+residual" and result["setting"] == "heavy"
    assert result["faults"] == ["mismatch"] and result["guard"] is True
    assert result["violation_steps"] == 0 and "fallback_steps" in result
    assert result["residual_steps"] == 256


def test_refinement_options_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (["eval", "--task", "push_block", "--setting", "slippery"], "no refinement setting"),
        (["eval", "--task", "push_block", "--setting", "heavy", "--faults", "all"], "--faults"),
        (["eval", "--residual", str(tmp_path)], "no residual checkpoint at"),
        (
            [
                "eval",
                "--task",
                "push_block",
                "--setting",
                "heavy",
                "--guard",
                "both",
                "--out",
                "x.jsonl",
            ],
            "one configuration",
        ),
        (["refine", "--task", "pendulum", "--out", str(tmp_path / "p")], "no refinement"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("imle-mpc: error:") and message in err[0]


@pytest.mark.slow
def test_a_killed_refine_resumes_where_it_stopped(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "imle_mpc.cli", "refine", *TINY, "--steps", "2000",
            "--eval-every", "0", "--out", str(out), "--json"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    committed = out / "checkpoint.json"
    deadline = time.monotonic() + 240
    while not committed.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped = json.loads(committed.read_text())
    assert 128 <= stopped["step"] < 2000, stopped["step"]
    resumed = subprocess.run([*argv, "--resume"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = json.loads(committed.read_text())
    assert final["step"] >= 2000
    kept = stopped["history"]["episodes"]
    assert final["history"]["episodes"][: len(kept)] == kept
