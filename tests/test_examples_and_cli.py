"""Examples run as smoke tests; the console script's --json contract."""

from __future__ import annotations

import importlib.util
import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imle_mpc.cli import main
from imle_mpc.tasks import load_task
from tests.conftest import run_python_snippet

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


# The example and a render of the same final state without the drawn paths, in a child
# interpreter: the GL backend is picked when mujoco is imported (pytest's may have none).
_GL_PROBE = """
import os
os.environ.setdefault("MUJOCO_GL", "egl")
import mujoco
with mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 8, 8) as renderer:
    renderer.render()
"""
_PUSH_RENDER = """
import runpy
import numpy as np
example = runpy.run_path({script!r})  # sets MUJOCO_GL before it imports mujoco
import mujoco
assert example["main"](["--out", {out!r}]) == 0
episode = example["run_push"](0)  # the same episode (seeded) for the bare render
camera = example["scene_camera"]()
np.savez(
    {out!r} + "/bare.npz",
    image=example["render"](episode, 960, 600, overlay=False),
    states=episode.states,
    camera=[*camera.lookat, camera.distance, camera.azimuth, camera.elevation],
    fovy=mujoco.MjModel.from_xml_path(str(example["PUSH_XML"])).vis.global_.fovy,
)
"""


def _pixels(points: np.ndarray, camera: np.ndarray, fovy: float, width: int, height: int):
    """Where MuJoCo's free camera (lookat xyz, distance, azimuth, elevation in degrees)
    puts world points Shape=(N, 3): (rows, columns), each Shape=(N,)."""
    lookat, distance = camera[:3], camera[3]
    az, el = np.radians(camera[4]), np.radians(camera[5])
    forward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    up = np.array([-np.sin(el) * np.cos(az), -np.sin(el) * np.sin(az), np.cos(el)])
    right = np.cross(forward, up)
    rel = points - (lookat - distance * forward)
    depth = rel @ forward
    focal = 0.5 * height / np.tan(np.radians(fovy) / 2)
    cols = 0.5 * width + focal * (rel @ right) / depth
    rows = 0.5 * height - focal * (rel @ up) / depth
    return np.round(rows).astype(int), np.round(cols).astype(int)


@pytest.mark.slow  # ~13 s: two episodes and two renders in a child interpreter
def test_push_block_render_example_draws_the_paths_on_the_scene(tmp_path: Path) -> None:
    # Not imported here: with a broken MUJOCO_GL, importing mujoco itself fails.
    if importlib.util.find_spec("mujoco") is None:
        pytest.skip("push_block needs `pip install mujoco`")
    probe = run_python_snippet(_GL_PROBE)
    if probe.returncode != 0:
        pytest.skip(f"no offscreen GL (MUJOCO_GL=egl): {probe.stderr.strip()[-300:]}")
    script = str(REPO / "examples" / "push_block_render.py")
    done = run_python_snippet(_PUSH_RENDER.format(script=script, out=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "success True" in done.stdout and "violation steps 0" in done.stdout
    assert str(tmp_path / "push_block.png") in done.stdout

    from matplotlib.image import imread

    picture = imread(tmp_path / "push_block.png")[..., :3] * 255.0
    bare = np.load(tmp_path / "bare.npz")
    image = bare["image"].astype(np.float64)
    assert picture.shape == image.shape == (600, 960, 3)
    change = np.abs(picture - image).sum(axis=2)
    # The picture is the render at 1:1; the paths and the key change a small part of it.
    assert 0.01 < np.mean(change > 30) < 0.2

    def at(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _pixels(points, bare["camera"], float(bare["fovy"]), 960, 600)

    # The projection is MuJoCo's: the post's top is red, the block's top orange.
    final = bare["states"][-1]
    (r,), (c,) = at(np.array([[0.3, 0.0, 0.1]]))
    assert image[r, c, 0] > image[r, c, 1] + 60
    (r,), (c,) = at(np.array([[final[2], final[3], 0.04]]))
    assert image[r, c, 0] > image[r, c, 1] > image[r, c, 2] + 60
    # Where the bare scene shows the table (grey: not the post, the block or the pusher)
    # along the block's executed path (drawn 4 mm over the table), the picture shows the path.
    path = np.column_stack([bare["states"][:, 2:4], np.full(len(bare["states"]), 0.004)])
    pixels = np.unique(np.column_stack(at(path)), axis=0)
    colours = image[pixels[:, 0], pixels[:, 1]]
    table = colours.max(axis=1) - colours.min(axis=1) < 40
    assert table.sum() > 30
    assert np.mean(change[pixels[table, 0], pixels[table, 1]] > 30) > 0.95


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


def test_train_model_flow_writes_a_calibrated_flow_the_task_accepts(tmp_path: Path, capsys) -> None:
    args = ["train", "--model", "flow", "--task", "nav_one_obstacle", "--epochs", "2"]
    assert main([*args, "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == "flow" and summary["epochs"] == 2
    assert summary["held_out_episodes"] == 4  # 20 % of each route's 10
    flow = load_task("nav_one_obstacle").load_flow(summary["flow"])
    assert flow.obs_horizon == 1 and flow.horizon == 16
    assert flow.threshold(0.05) == pytest.approx(summary["threshold_q05"])


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
