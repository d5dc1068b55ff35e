"""Examples run as smoke tests; the console script's --json contract."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imle_mpc.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "args", "expect"),
    [
        ("pendulum_swingup.py", ["--steps", "200"], "upright"),
        ("custom_cost.py", ["--steps", "40"], "below_axis"),
    ],
)
def test_example_runs(script: str, args: list[str], expect: str, capsys) -> None:
    module = runpy.run_path(str(REPO / "examples" / script))
    assert module["main"](args) == 0
    out = capsys.readouterr().out
    assert expect in out
    assert "not upright" not in out


def test_escape_the_trap_example(capsys, tmp_path: Path) -> None:
    module = runpy.run_path(str(REPO / "examples" / "escape_the_trap.py"))
    assert module["main"](["--episodes", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "MPPI, 1024 samples: success 0/1" in out
    assert "16 chunks + lookahead: success 1/1" in out
    assert (tmp_path / "trap.png").stat().st_size > 0


def test_run_json_summary_is_last_line(capsys, tmp_path: Path) -> None:
    assert main(["run", "point_mass", "--episodes", "1", "--json", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert summary["task"] == "point_mass" and summary["success_rate"] == 1.0
    assert (tmp_path / "point_mass_mppi_seed0.npz").exists()


def test_demo_writes_plot_and_json(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "imle_mpc.cli",
            "demo",
            "--episodes",
            "2",
            "--tasks",
            "nav_one_obstacle",
            "--out",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["success_rate"] == 1.0 and summary["collisions"] == 0
    assert summary["results"][0]["planner"] == "imle_mpc"
    png = Path(summary["plot"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_writes_a_loadable_generator(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "imle_mpc.cli", "train", "--task", "nav_one_obstacle"]
    command += ["--epochs", "2", "--out", str(tmp_path), "--json"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 2 and np.isfinite(summary["final_loss"])
    from imle_mpc.learn.imle import load_generator

    gen = load_generator(summary["generator"])
    assert gen.horizon == 16 and gen.nu == 2


def test_missing_generator_is_a_clean_error(capsys, tmp_path) -> None:
    assert main(["run", "point_mass", "--planner", "imle_mpc"]) == 2
    err = capsys.readouterr().err
    assert "ships no generator" in err and "--generator DIR" in err
    missing = tmp_path / "nothing_here"
    assert main(["run", "nav_one_obstacle", "--planner", "imle_mpc", "--generator", str(missing)])
    assert f"no generator for task 'nav_one_obstacle' at {missing}" in capsys.readouterr().err


def test_unknown_task_is_refused(capsys) -> None:
    assert main(["run", "no_such_task"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'no_such_task'" in err and "module:function" in err
    assert main(["run", "no_such_module:make_task"]) == 2
    assert "cannot import module 'no_such_module'" in capsys.readouterr().err


def test_own_task_example_from_demonstrations_to_eval(tmp_path: Path) -> None:
    """Bring your own task: own expert -> dataset -> train -> run and eval from the CLI."""
    module = runpy.run_path(str(REPO / "examples" / "own_task.py"))
    summary = module["main"](["all", "--out", str(tmp_path), "--epochs", "20", "--episodes", "2"])
    assert (tmp_path / "demos.npz").is_file() and (
        tmp_path / "gen" / "generator.safetensors"
    ).is_file()
    assert summary["train"]["epochs"] == 20
    run, ev = summary["run"], summary["eval"]
    assert run["task"] == ev["task"] == "three_gaps"  # the user's task, loaded from the file
    assert run["success_rate"] == 1.0 and ev["success_rate"] == 1.0
    assert ev["violation_steps"] == 0 and ev["episodes"] == 2
    # The routes are the task's own (its Routes hook), read back from the executed paths.
    assert set(run["routes"]) | set(ev["routes"]) <= {"above", "middle", "below"}


def test_cli_train_resume_continues_to_the_same_generator(tmp_path: Path, capsys) -> None:
    """``train --resume`` picks up the checkpoint: 2 epochs + resumed to 3 = 3 straight."""
    tiny = ["train", "--task", "nav_one_obstacle", "--batch-size", "64", "--json"]
    assert main([*tiny, "--epochs", "3", "--out", str(tmp_path / "straight")]) == 0
    straight = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    parted = str(tmp_path / "parted")
    assert main([*tiny, "--epochs", "2", "--checkpoint-every", "1", "--out", parted]) == 0
    capsys.readouterr()
    assert main([*tiny, "--epochs", "3", "--resume", "--out", parted]) == 0
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert resumed["epochs"] == straight["epochs"] == 3
    assert resumed["final_loss"] == straight["final_loss"]


def test_cli_eval_no_offset_free_and_run_no_guard_switch_the_mechanisms_off(capsys) -> None:
    args = ["eval", "--episodes", "1", "--faults", "mismatch", "--planner", "mppi", "--json"]
    assert main(args) == 0
    on = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main([*args, "--no-offset-free"]) == 0
    off = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (on["guard"], on["offset_free"]) == (True, True)
    assert (off["guard"], off["offset_free"]) == (True, False)
    # The IMLE policy alone (no model): measured, the guard steps in on 10 steps of seed 0.
    run = ["run", "nav_one_obstacle", "--planner", "imle_policy", "--json"]
    assert main(run) == 0
    guarded = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main([*run, "--no-guard"]) == 0
    unguarded = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert guarded["fallback_steps"] > 0 and unguarded["fallback_steps"] == 0
