"""Evaluation sweeps: the grid, durable JSON-lines results, backends that agree, resume, report."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from imle_mpc.cli import _is_sweep, build_parser, main
from imle_mpc.core.errors import InputError
from imle_mpc.eval.results import RecordWriter, TornLineWarning, encode_record, read_records
from imle_mpc.eval.sweep import (
    RAY_TEMP_DIR_MAX,
    TIMING_FIELDS,
    BackendConfig,
    EpisodeJob,
    SweepConfig,
    comparable,
    run_sweep,
    short_path,
)

REPO = Path(__file__).resolve().parents[2]
HAS_RAY = importlib.util.find_spec("ray") is not None

# 2 tasks x 2 planners x 2 fault scales x guard on/off x 2 seeds = 32 short episodes.
GRID = dict(
    tasks=("nav_one_obstacle", "nav_two_obstacles"),
    planners=("imle_policy", "imle_mpc"),
    samples=(8,),
    faults=("all",),
    fault_scales=(0.5, 2.0),
    guards=(True, False),
    episodes=2,
    store_states=True,
)
GRID_ARGS = [
    "eval", "--tasks", "nav_one_obstacle", "nav_two_obstacles",
    "--planners", "imle_policy", "imle_mpc", "--samples", "8", "--faults", "all",
    "--fault-scales", "0.5", "2.0", "--guard", "both", "--store-states",
]  # fmt: skip


RECORD_FIELDS = (
    "key", "task", "planner", "num_samples", "faults", "fault_scale", "guard", "seed",
    "success", "violation_steps", "fallback_steps", "deadline_overruns", "min_clearance",
    "plan_ms_p50", "plan_ms_p95", "plan_ms_p99", "plan_ms", "states",
)  # fmt: skip


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_WAIT_POLICY="PASSIVE")


def _by_key(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["key"]: comparable(r) for r in records}


# --- the grid and the results file (fast) ---------------------------------------------------


def test_jobs_cover_the_grid_with_stable_unique_keys() -> None:
    config = SweepConfig(**GRID)  # type: ignore[arg-type]
    jobs = config.jobs()
    assert len(jobs) == config.size == 32
    assert len({job.key for job in jobs}) == 32
    job = EpisodeJob("nav_one_obstacle", "mppi", None, "noise,push", 2.0, False, 7)
    assert job.key == "nav_one_obstacle/mppi/n=default/faults=noise,push/x2.0/noguard/seed=7"
    # one configuration's seeds back to back: a worker reuses its planner
    assert [j.seed for j in jobs[:4]] == [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"tasks": ()}, "SweepConfig.tasks"),
        ({"planners": ("mppi", "mppi")}, "SweepConfig.planners"),
        ({"planners": ("rrt",)}, "SweepConfig.planners"),
        ({"fault_scales": (-1.0,)}, "SweepConfig.fault_scales"),
        ({"samples": (0,)}, "SweepConfig.samples"),
        ({"episodes": 0}, "SweepConfig.episodes"),
        ({"faults": ("noise,earthquake",)}, "unknown fault kinds"),
    ],
)
def test_sweep_config_errors_name_the_field(change: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        SweepConfig(**{**GRID, **change})  # type: ignore[arg-type]


def _write_lines(path: Path, n: int) -> list[dict[str, Any]]:
    records = [{"key": f"k{i}", "value": float(i)} for i in range(n)]
    with RecordWriter(path) as writer:
        writer.extend(records)
    return records


def test_torn_last_line_is_ignored_with_a_warning_and_cut_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    records = _write_lines(path, 3)
    with open(path, "ab") as fh:
        fh.write(encode_record({"key": "k3", "value": 3.0})[:9])  # a crash mid-write
    with pytest.warns(TornLineWarning, match="line 4 is torn"):
        assert read_records(path) == records
    with pytest.warns(TornLineWarning), RecordWriter(path, resume=True) as writer:
        assert writer.existing == records
        writer.append({"key": "k3", "value": 3.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["key"] for r in read_records(path)] == ["k0", "k1", "k2", "k3"]


def test_a_whole_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    _write_lines(path, 1)
    with open(path, "ab") as fh:
        fh.write(encode_record({"key": "k1"}).rstrip(b"\n"))
    assert [r["key"] for r in read_records(path)] == ["k0", "k1"]
    with RecordWriter(path, resume=True) as writer:
        writer.append({"key": "k2"})
    assert [r["key"] for r in read_records(path)] == ["k0", "k1", "k2"]


def test_a_broken_line_before_the_last_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"key": "a"}\n{"key": \n{"key": "c"}\n')
    with pytest.raises(InputError, match="line 2 is not a JSON object"):
        read_records(path)


def test_existing_results_are_never_overwritten_without_resume(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    _write_lines(path, 1)
    with pytest.raises(InputError, match="--resume"):
        RecordWriter(path)


def test_records_are_strict_json_nan_as_null() -> None:
    line = encode_record({"key": "k", "x": float("nan"), "y": [1.0, float("inf")]})
    assert json.loads(line) == {"key": "k", "x": None, "y": [1.0, None]}


def test_eval_without_sweep_options_stays_a_single_evaluation() -> None:
    parser = build_parser()
    assert not _is_sweep(parser.parse_args(["eval", "--samples", "8", "--faults", "all"]))
    assert not _is_sweep(parser.parse_args(["eval", "--out", "x.json", "--no-guard"]))
    for extra in (["--guard", "both"], ["--samples", "8", "16"], ["--out", "x.jsonl"]):
        assert _is_sweep(parser.parse_args(["eval", *extra]))


def test_a_sweep_needs_an_out_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--guard", "both", "--episodes", "1"]) == 2
    assert "--out PATH.jsonl" in capsys.readouterr().err


def test_ray_missing_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "r.jsonl"
    assert main(["eval", "--episodes", "1", "--ray", "--out", str(out)]) == 2
    assert 'pip install -e ".[dist]"' in capsys.readouterr().err
    assert not out.exists() or out.stat().st_size == 0


@pytest.mark.skipif(not HAS_RAY, reason='ray is not installed (pip install -e ".[dist]")')
def test_an_unreachable_ray_address_fails_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["eval", "--episodes", "1", "--ray-address", f"127.0.0.1:{port}"]
    assert main([*args, "--out", str(tmp_path / "r.jsonl")]) == 2
    assert "nothing answers at the Ray address" in capsys.readouterr().err


# --- running sweeps (slow: worker start-up and JIT compilation dominate) --------------------


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("serial") / "serial.jsonl"
    result = run_sweep(SweepConfig(**GRID), out, progress=False)  # type: ignore[arg-type]
    assert result.ran == 32 and result.skipped == 0
    records = read_records(out)
    assert [r["key"] for r in records] == [r["key"] for r in result.records]
    return records


@pytest.mark.slow
def test_serial_records_hold_the_job_the_outcome_and_plan_times(
    serial: list[dict[str, Any]],
) -> None:
    record = serial[0]
    for field in RECORD_FIELDS:
        assert field in record, field
    scaled_up = next(r for r in serial if r["fault_scale"] == 2.0)
    assert scaled_up["fault_kinds"] == ["noise", "delay", "mismatch", "push", "drop"]
    assert record["fault_settings"]["action_delay"] == 0  # x0.5 rounds one step of delay to 0
    assert len(record["plan_ms"]) == record["steps"]
    # the unguarded runs never fall back; the guarded ones do (dropped plans at least)
    assert all(r["fallback_steps"] == 0 for r in serial if not r["guard"])
    assert any(r["fallback_steps"] > 0 for r in serial if r["guard"])


@pytest.mark.slow
def test_local_pool_gives_the_serial_records(
    serial: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "local.jsonl"
    args = [*GRID_ARGS, "--episodes", "2", "--workers", "2", "--out", str(out), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["sweep"] and summary["backend"] == "local" and summary["workers"] == 2
    assert summary["episodes"] == summary["ran"] == 32 and summary["configurations"] == 16
    records = read_records(out)
    assert len(records) == 32
    assert _by_key(records) == _by_key(serial)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason='ray is not installed (pip install -e ".[dist]")')
def test_local_ray_gives_the_serial_records(serial: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "ray.jsonl"
    backend = BackendConfig("ray", workers=2)
    result = run_sweep(SweepConfig(**GRID), out, backend, progress=False)  # type: ignore[arg-type]
    assert result.ran == 32 and result.workers == 2
    assert _by_key(read_records(out)) == _by_key(serial)
    # the local instance kept its files beside the results (reached through a short link)
    assert any((tmp_path / ".ray").glob("session_*"))


@pytest.mark.slow
def test_killed_sweep_resumes_without_losing_or_repeating_episodes(
    serial: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "killed.jsonl"
    args = [*GRID_ARGS, "--episodes", "4", "--out", str(out)]  # 64 episodes, serial
    cmd = [sys.executable, "-m", "imle_mpc.cli", *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    finished = out.read_bytes().count(b"\n")
    assert 3 <= finished < 64, f"the sweep was not stopped midway ({finished} lines)"
    with open(out, "ab") as fh:  # and as if it had died inside a write
        fh.write(b'{"key": "nav_one_obs')

    # resume here (this process has compiled the kernels already; a new one would again)
    with pytest.warns(TornLineWarning, match="torn"):
        assert main([*args, "--resume", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["skipped"] == finished and summary["ran"] == 64 - finished
    records = read_records(out)
    keys = [r["key"] for r in records]
    expected = {job.key for job in SweepConfig(**{**GRID, "episodes": 4}).jobs()}  # type: ignore[arg-type]
    assert len(keys) == len(set(keys)) == 64 and set(keys) == expected
    # the episodes of both runs are the ones an uninterrupted sweep gives
    by_key = _by_key(records)
    assert {k: by_key[k] for k in _by_key(serial)} == _by_key(serial)


@pytest.mark.slow
def test_report_has_a_row_per_configuration_and_the_plots(
    serial: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.jsonl"
    with RecordWriter(results) as writer:
        writer.extend(serial)
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 32 and summary["configurations"] == 16
    text = (out / "report.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| nav_")]
    assert len(rows) == 16
    assert any(
        line.startswith("| nav_one_obstacle | imle_policy | 8 | all | 0.5 | off | 2 |")
        for line in rows
    )
    plots = ("success_vs_samples", "plan_time_vs_samples", "violations_vs_fault_scale",
             "trajectories")  # fmt: skip
    for name in plots:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name}.png)" in text
    assert (out / "trajectories.png").is_file() and not summary["skipped_plots"]


def test_timing_fields_are_the_only_ones_left_out_of_comparisons() -> None:
    record = {"key": "k", "success": True, **dict.fromkeys(TIMING_FIELDS, 1.0)}
    assert comparable(record) == {"key": "k", "success": True}


def test_sweep_modules_import_neither_ray_nor_torch_nor_matplotlib() -> None:
    code = (
        "import sys, imle_mpc.eval.sweep, imle_mpc.eval.backends, imle_mpc.eval.jobs, "
        "imle_mpc.eval.results, imle_mpc.eval.report, imle_mpc.cli; "
        "print(sorted({'ray', 'torch', 'matplotlib'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_a_long_ray_temp_dir_is_reached_through_a_short_link(tmp_path: Path) -> None:
    long_dir = tmp_path / ("x" * 60) / ".ray"
    long_dir.mkdir(parents=True)
    with short_path(long_dir) as path:
        assert len(str(path)) <= RAY_TEMP_DIR_MAX
        assert path.resolve() == long_dir.resolve()
    assert not path.exists() and not path.parent.exists()
    with short_path(Path("/tmp/r")) as path:
        assert path == Path("/tmp/r")


def test_a_sweep_with_faults_a_task_does_not_state_fails_before_any_episode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Protects: ``run_sweep``'s up-front fault check. point_mass states no fault
    magnitudes; listed after a task that does, a sweep checking lazily would run (and
    record) nav_one_obstacle's episodes first and fail half-way through."""
    import imle_mpc.eval.jobs as jobs

    def no_episode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an episode ran before the fault settings were checked")

    monkeypatch.setattr(jobs, "run_episode", no_episode)
    config = SweepConfig(
        tasks=("nav_one_obstacle", "point_mass"), planners=("mppi",), samples=(8,),
        faults=("noise",), episodes=1,
    )  # fmt: skip
    out = tmp_path / "r.jsonl"
    with pytest.raises(InputError, match="point_mass"):
        run_sweep(config, out, progress=False)
    assert not out.exists() or out.read_text() == ""
