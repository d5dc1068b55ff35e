"""The report's numbers: Wilson intervals, rates and plan-time percentiles, checked by value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from imle_mpc.eval.report import config_rows, summarise_config, table_row, wilson


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        # Published 95 % Wilson score intervals (Newcombe 1998, Table I; z = 1.96).
        (0, 10, (0.0, 0.2775)),
        (5, 10, (0.2366, 0.7634)),
        (8, 10, (0.4902, 0.9433)),
        (10, 10, (0.7225, 1.0)),
        (81, 263, (0.2553, 0.3662)),
    ],
)
def test_wilson_matches_published_intervals(successes: int, n: int, expected: tuple) -> None:
    np.testing.assert_allclose(wilson(successes, n), expected, atol=5e-5)


def test_wilson_of_no_episodes_is_nan() -> None:
    assert all(np.isnan(wilson(0, 0)))


def _record(seed: int, success: bool, violations: int, plan_ms: list[float], **extra: Any) -> dict:
    return {
        "task": "nav_one_obstacle", "planner": "imle_mpc", "num_samples": 8, "faults": "all",
        "fault_scale": 1.0, "guard": True, "seed": seed, "key": f"k{seed}",
        "success": success, "violation_steps": violations, "fallback_steps": 1,
        "deadline_overruns": 0, "min_clearance": 0.1 * (seed + 1), "route": "above",
        "plan_ms": plan_ms, "plan_ms_mean": float(np.mean(plan_ms)),
        "plan_ms_p95": float(np.percentile(plan_ms, 95)), **extra,
    }  # fmt: skip


def test_a_configuration_row_has_the_right_rates_intervals_and_percentiles() -> None:
    # 10 episodes, 8 successes, 3 with violations (2 + 5 + 1 steps); plan times 1..100 ms
    # spread so that pooling every step differs from any per-episode figure.
    violations = {2: 2, 5: 5, 7: 1}
    records = [
        _record(s, s not in (2, 7), violations.get(s, 0), [s * 10.0 + t for t in range(1, 11)])
        for s in range(10)
    ]
    row = summarise_config(records)
    assert row["episodes"] == 10 and row["success_rate"] == 0.8
    assert row["violation_steps"] == 8 and row["violation_episodes"] == 3
    assert row["violation_rate"] == 0.3
    np.testing.assert_allclose(row["success_ci95"], (0.4902, 0.9433), atol=5e-5)
    np.testing.assert_allclose(row["violation_ci95"], wilson(3, 10))
    # Percentiles of all 100 steps (1..100 ms), not of the episodes' summaries.
    np.testing.assert_allclose(
        (row["plan_ms_p50"], row["plan_ms_p95"], row["plan_ms_p99"]), (50.5, 95.05, 99.01)
    )
    assert row["min_clearance"] == pytest.approx(0.1) and row["fallback_steps"] == 10
    cells = [c.strip() for c in table_row(row).strip("|").split("|")]
    assert cells[6:] == [
        "10", "80 %", "[49, 94]", "8", "3 (30 %)", "[11, 60]", "10", "0", "50.50", "95.05",
        "99.01",
    ]  # fmt: skip


def test_rows_are_one_per_configuration_with_their_own_figures() -> None:
    on = [_record(s, True, 0, [1.0]) for s in range(4)]
    off = [_record(s, s == 0, 3, [2.0], guard=False, key=f"off{s}") for s in range(4)]
    rows = config_rows(off + on)
    assert [r["guard"] for r in rows] == [True, False]  # guard on first
    assert [r["success_rate"] for r in rows] == [1.0, 0.25]
    assert [r["violation_episodes"] for r in rows] == [0, 4]
    assert [r["plan_ms_p50"] for r in rows] == [1.0, 2.0]
