"""Reports of sweep results: a Markdown table per configuration and PNG plots.

``write_report(results, out_dir)`` reads a sweep's JSON-lines file
(``imle_mpc.eval.sweep``), groups the episodes by configuration (every job field
but the seed, ``imle_mpc.eval.jobs.CONFIG_FIELDS``) and writes ``report.md``
with, per configuration: the success rate with its 95 % Wilson interval, the
violation steps and the episodes with any violation (with their interval),
the guard's fallback steps, the deadline overruns, and the p50 / p95 / p99
planning time over every step of every episode. Plots (PNG, beside it):

* ``success_vs_samples.png``: success rate against samples per step;
* ``plan_time_vs_samples.png``: planning time p50 and p95 against samples;
* ``violations_vs_fault_scale.png``: episodes with violations against the fault
  scale, the guard on (solid) and off (dashed), where the grid has faults;
* ``trajectories.png``: a few episodes' measured paths with the obstacles,
  where the sweep stored states (``--store-states``) of a task with a scene.

A plot that the data cannot support is left out and the report says why.
Every file is written atomically.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imle_mpc.core.errors import InputError
from imle_mpc.core.io import write_atomic
from imle_mpc.eval.jobs import CONFIG_FIELDS
from imle_mpc.eval.plots import draw_scene
from imle_mpc.eval.results import read_records
from imle_mpc.eval.summary import summarise
from imle_mpc.tasks.registry import TASKS, make_task

ConfigKey = tuple[Any, ...]
MAX_TRAJECTORIES = 8
"""Episodes drawn per task in ``trajectories.png`` (violations first, then failures)."""


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (``(nan, nan)`` for ``n == 0``)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def config_key(record: dict[str, Any]) -> ConfigKey:
    """The configuration of a record: its ``CONFIG_FIELDS`` values."""
    return tuple(record.get(name) for name in CONFIG_FIELDS)


def _sort_key(key: ConfigKey) -> tuple[Any, ...]:
    task, planner, n, faults, scale, guard = key
    return (task, planner, -1 if n is None else n, faults, scale, not guard)


def unique_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` with each ``key`` once (the first kept; a warning counts the rest)."""
    seen: set[Any] = set()
    out = []
    for record in records:
        key = record.get("key")
        if key in seen:
            continue
        seen.add(key)
        out.append(record)
    if len(out) < len(records):
        warnings.warn(
            f"{len(records) - len(out)} records repeat an earlier key and are ignored.",
            stacklevel=2,
        )
    return out


def totals(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures over all ``records`` (the keys of ``imle-mpc eval --json``): ``summarise``'s."""
    return summarise(records)


def _percentiles(records: Sequence[dict[str, Any]]) -> tuple[float, float, float]:
    """p50, p95, p99 of the planning time [ms] over every step of ``records``."""
    steps = [r["plan_ms"] for r in records if r.get("plan_ms")]
    if not steps:
        return (math.nan, math.nan, math.nan)
    ms = np.concatenate([np.asarray(s, dtype=np.float64) for s in steps])
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return (float(p50), float(p95), float(p99))


def summarise_config(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's row: its fields, ``totals`` and intervals, plan-time percentiles."""
    row = dict(zip(CONFIG_FIELDS, config_key(records[0]), strict=True))
    row.update(totals(records))
    n = row["episodes"]
    successes = sum(bool(r["success"]) for r in records)
    row["success_ci95"] = list(wilson(successes, n))
    row["violation_rate"] = row["violation_episodes"] / n
    row["violation_ci95"] = list(wilson(row["violation_episodes"], n))
    p50, p95, p99 = _percentiles(records)
    row.update(plan_ms_p50=p50, plan_ms_p95=p95, plan_ms_p99=p99)
    clearances = [r["min_clearance"] for r in records if r.get("min_clearance") is not None]
    row["min_clearance"] = min(clearances) if clearances else None
    return row


def config_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``summarise_config`` of every configuration in ``records``, in a stable order."""
    groups: dict[ConfigKey, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(config_key(record), []).append(record)
    return [summarise_config(groups[k]) for k in sorted(groups, key=_sort_key)]


# --- Markdown -------------------------------------------------------------------------------


def _samples(n: int | None) -> str:
    return "default" if n is None else str(n)


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.0f} %"


def _ci(lo: float, hi: float) -> str:
    return "n/a" if math.isnan(lo) else f"[{100 * lo:.0f}, {100 * hi:.0f}]"


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


TABLE_HEADER = (
    "| task | planner | N | faults | scale | guard | episodes | success | 95 % CI "
    "| violation steps | episodes with violations | 95 % CI | fallback steps "
    "| deadline overruns | plan ms p50 | p95 | p99 |"
)


def table_row(row: dict[str, Any]) -> str:
    """One configuration as a Markdown table row (columns of ``TABLE_HEADER``)."""
    cells = [
        row["task"], row["planner"], _samples(row["num_samples"]), row["faults"],
        f"{row['fault_scale']:g}", "on" if row["guard"] else "off", str(row["episodes"]),
        _pct(row["success_rate"]), _ci(*row["success_ci95"]), str(row["violation_steps"]),
        f"{row['violation_episodes']} ({_pct(row['violation_rate'])})",
        _ci(*row["violation_ci95"]), str(row["fallback_steps"]), str(row["deadline_overruns"]),
        _ms(row["plan_ms_p50"]), _ms(row["plan_ms_p95"]), _ms(row["plan_ms_p99"]),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def markdown(
    source: str,
    rows: Sequence[dict[str, Any]],
    plots: dict[str, Path],
    skipped: dict[str, str],
    records: Sequence[dict[str, Any]],
) -> str:
    """The text of ``report.md``."""
    overall = totals(records)
    seeds = sorted({r["seed"] for r in records})
    lines = [
        "# Sweep report",
        "",
        f"Results: `{source}`: {len(records)} episodes in {len(rows)} configurations, "
        f"seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} distinct). Written "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
        "",
        f"Overall: success {_pct(overall['success_rate'])}, "
        f"{overall['violation_steps']} violation steps in {overall['violation_episodes']} "
        f"episodes, {overall['fallback_steps']} fallback steps, "
        f"{overall['deadline_overruns']} deadline overruns.",
        "",
        "## Per configuration",
        "",
        TABLE_HEADER,
        "|" + "---|" * TABLE_HEADER.count(" | ") + "---|",
        *(table_row(row) for row in rows),
        "",
        "N: samples per step (IMLE: generator chunks; `default`: the task's). Scale: factor "
        "on the task's stated fault magnitudes. A violation step is an executed transition "
        "that violates a safety constraint of the task (judged on the true state). 95 % CI: "
        "Wilson score interval. Plan times are pooled over every control step of every "
        "episode of the configuration; they are wall-clock figures and depend on the machine "
        "and on what else ran on it (workers share the cores).",
        "",
        "## Plots",
        "",
    ]
    for name, path in plots.items():
        lines += [f"![{name}]({path.name})", ""]
    for name, why in skipped.items():
        lines += [f"- `{name}` left out: {why}", ""]
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------


def _figure(panels: int) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.5), squeeze=False)
    return fig, axes[0]


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
    return path


def _by(rows: Sequence[dict[str, Any]], *fields: str) -> dict[tuple[Any, ...], list[dict]]:
    out: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(tuple(row[f] for f in fields), []).append(row)
    return out


def _fault_label(row: dict[str, Any]) -> str:
    return "no faults" if row["faults"] == "none" else f"{row['faults']} x{row['fault_scale']:g}"


def _guard_label(guard: bool) -> str:
    return "guard" if guard else "no guard"


def _sample_axis(ax: Any, rows: Sequence[dict[str, Any]]) -> dict[int | None, int]:
    """Categorical x positions of the sample counts (``default`` first)."""
    values = sorted({r["num_samples"] for r in rows}, key=lambda n: -1 if n is None else n)
    ax.set_xticks(range(len(values)), [_samples(n) for n in values])
    ax.set_xlabel("samples per step N")
    return {n: i for i, n in enumerate(values)}


def plot_success_vs_samples(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Success rate (95 % CI) vs samples, a panel per task, a line per planner/faults/guard."""
    tasks = _by(rows, "task")
    fig, axes = _figure(len(tasks))
    for ax, ((task,), task_rows) in zip(axes, tasks.items(), strict=True):
        x_of = _sample_axis(ax, task_rows)
        lines = _by(task_rows, "planner", "faults", "fault_scale", "guard")
        for (planner, _, _, guard), line in lines.items():
            line = sorted(line, key=lambda r: x_of[r["num_samples"]])
            x = np.array([x_of[r["num_samples"]] for r in line], dtype=float)
            rate = np.array([r["success_rate"] for r in line])
            ci = np.array([r["success_ci95"] for r in line]).T
            ax.errorbar(
                x, rate, yerr=[rate - ci[0], ci[1] - rate], marker="o", capsize=3,
                linestyle="-" if guard else "--",
                label=f"{planner}, {_fault_label(line[0])}, {_guard_label(guard)}",
            )  # fmt: skip
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("success rate (95 % Wilson CI)")
        ax.set_title(f"{task}: success vs samples")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_time_vs_samples(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Planning time p50 (filled) and p95 (open) vs samples, a line per planner and guard."""
    tasks = _by(rows, "task")
    fig, axes = _figure(len(tasks))
    for ax, ((task,), task_rows) in zip(axes, tasks.items(), strict=True):
        x_of = _sample_axis(ax, task_rows)
        for (planner, guard), group in _by(task_rows, "planner", "guard").items():
            per_n = _by(group, "num_samples")
            ns = sorted(per_n, key=lambda k: x_of[k[0]])
            x = [x_of[n] for (n,) in ns]
            p50 = [float(np.median([r["plan_ms_p50"] for r in per_n[n]])) for n in ns]
            p95 = [float(np.median([r["plan_ms_p95"] for r in per_n[n]])) for n in ns]
            label = f"{planner}, {_guard_label(guard)}"
            (handle,) = ax.plot(x, p50, marker="o", label=f"{label} p50")
            ax.plot(x, p95, marker="o", markerfacecolor="none", linestyle=":",
                    color=handle.get_color(), label=f"{label} p95")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylabel("wall time per plan [ms]")
        ax.set_title(f"{task}: planning time (median over fault settings)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_violations_vs_scale(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Episodes with violations (95 % CI) vs fault scale; guard on solid, off dashed."""
    faulty = [r for r in rows if r["faults"] != "none"]
    tasks = _by(faulty, "task")
    fig, axes = _figure(len(tasks))
    for ax, ((task,), task_rows) in zip(axes, tasks.items(), strict=True):
        lines = _by(task_rows, "planner", "num_samples", "faults", "guard")
        colors: dict[tuple[Any, ...], Any] = {}
        scales = [r["fault_scale"] for r in task_rows]
        dodge = 0.01 * ((max(scales) - min(scales)) or 1.0)  # error bars side by side
        for i, ((planner, n, faults, guard), line) in enumerate(lines.items()):
            line = sorted(line, key=lambda r: r["fault_scale"])
            x = np.array([r["fault_scale"] for r in line]) + (i - (len(lines) - 1) / 2) * dodge
            rate = np.array([r["violation_rate"] for r in line])
            ci = np.array([r["violation_ci95"] for r in line]).T
            handle = ax.errorbar(
                x, rate, yerr=[rate - ci[0], ci[1] - rate], marker="o", capsize=3,
                linestyle="-" if guard else "--", color=colors.get((planner, n, faults)),
                label=f"{planner} N={_samples(n)}, {faults}, {_guard_label(guard)}",
            )  # fmt: skip
            colors.setdefault((planner, n, faults), handle.lines[0].get_color())
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("fault scale (x the task's stated magnitudes)")
        ax.set_ylabel("episodes with a violation (95 % Wilson CI)")
        ax.set_title(f"{task}: violations vs fault magnitude")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _chosen_episodes(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to ``MAX_TRAJECTORIES`` episodes: violations first, then failures, then the rest."""
    ranked = sorted(
        records, key=lambda r: (-(r["violation_steps"] > 0), bool(r["success"]), r["key"])
    )
    return ranked[:MAX_TRAJECTORIES]


def plot_trajectories(
    records: Sequence[dict[str, Any]], path: Path, scenes: dict[str, Any]
) -> Path:
    """Measured (x, y) paths of a few episodes per task over the task's obstacles."""

    tasks = _by(records, "task")
    fig, axes = _figure(len(tasks))
    for ax, ((task,), task_records) in zip(axes, tasks.items(), strict=True):
        draw_scene(ax, scenes[task])
        for r in _chosen_episodes(task_records):
            states = np.asarray(r["states"], dtype=np.float64)
            style = ":" if r["violation_steps"] else ("-" if r["success"] else "--")
            label = f"{r['planner']} {_fault_label(r)} {_guard_label(r['guard'])} s{r['seed']}" + (
                " VIOLATION" if r["violation_steps"] else ""
            )
            ax.plot(states[:, 0], states[:, 1], style, lw=1.4, label=label)
        ax.set_aspect("equal")
        ax.set_xlabel("x [m]")
        ax.set_ylabel("y [m]")
        ax.set_title(f"{task}: measured paths\n(dotted: violation, dashed: failure)", fontsize=10)
        ax.legend(fontsize=6, loc="upper left")
    return _save(fig, path)


def _scenes(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Task name -> obstacle scene, for the tasks of ``records`` that have one."""

    out = {}
    for name in sorted({r["task"] for r in records}):
        scene = make_task(name).scene if name in TASKS else None
        if scene is not None:
            out[name] = scene
    return out


def make_plots(
    rows: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], out_dir: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    """Every plot the data supports; returns (name -> path, name -> why left out)."""
    plots = {
        "success_vs_samples": plot_success_vs_samples(rows, out_dir / "success_vs_samples.png"),
        "plan_time_vs_samples": plot_time_vs_samples(rows, out_dir / "plan_time_vs_samples.png"),
    }
    skipped: dict[str, str] = {}
    if any(r["faults"] != "none" for r in rows):
        path = out_dir / "violations_vs_fault_scale.png"
        plots["violations_vs_fault_scale"] = plot_violations_vs_scale(rows, path)
    else:
        skipped["violations_vs_fault_scale"] = "the sweep ran without faults"
    with_states = [r for r in records if r.get("states")]
    scenes = _scenes(with_states)
    drawable = [r for r in with_states if r["task"] in scenes]
    if drawable:
        path = out_dir / "trajectories.png"
        plots["trajectories"] = plot_trajectories(drawable, path, scenes)
    elif with_states:
        skipped["trajectories"] = "no task of the stored episodes has a planar scene"
    else:
        skipped["trajectories"] = "the sweep stored no states (imle-mpc eval --store-states)"
    return plots, skipped


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What ``write_report`` wrote.

    Attributes:
        path: ``report.md``.
        plots: plot name -> PNG path.
        skipped: plot name -> why it was left out.
        rows: one summary per configuration (``summarise_config``).
        records: the episodes it was made from.
    """

    path: Path
    plots: dict[str, Path]
    skipped: dict[str, str]
    rows: list[dict[str, Any]]
    records: list[dict[str, Any]]


def write_report(results: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Report:
    """Read a sweep's results file and write ``out_dir/report.md`` and its plots.

    Raises:
        FileNotFoundError: ``results`` does not exist.
        InputError: ``results`` holds no records, or a broken line before the last.
    """

    records = unique_records(read_records(results))
    if not records:
        raise InputError(f"{results} holds no episode records; run imle-mpc eval --out first.")
    missing = [f for f in (*CONFIG_FIELDS, "key", "seed", "success") if f not in records[0]]
    if missing:
        raise InputError(f"{results} is not a sweep results file: its records lack {missing}.")
    out = Path(out_dir)
    rows = config_rows(records)
    plots, skipped = make_plots(rows, records, out)
    text = markdown(str(results), rows, plots, skipped, records)
    path = write_atomic(out / "report.md", lambda fh: fh.write(text.encode()))
    return Report(path, plots, skipped, rows, records)
