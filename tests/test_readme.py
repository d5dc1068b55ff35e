"""The README's Python examples run as written (a newcomer copies these first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.markdown_blocks import python_blocks, run_block

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = python_blocks(README)


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    namespace: dict[str, object] = {"__name__": "readme_example"}
    run_block(BLOCKS[index], "README.md", namespace)
    record = namespace.get("record")
    if record is not None:  # the episode examples: guarded, and they get there
        assert record.success  # type: ignore[attr-defined]
    guard = namespace.get("guard")
    if guard is not None:  # the hand-written loop: safe, and it gets there
        x = np.asarray(namespace["x"])
        assert np.linalg.norm(x[:2] - [4.0, 0.0]) < 0.3
