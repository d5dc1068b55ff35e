"""The Python blocks of a Markdown page, for the tests that run them (README.md, docs/).

Every ```` ```python ```` block of a page runs. A block that must not run (one that
needs hardware or another process) is preceded by an HTML comment that says why,
``<!-- no-run: the reason -->``, which the rendered page does not show; keep them few.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(
    r"(<!-- no-run: (?P<why>[^>]*?) -->\n)?^```python\n(?P<code>.*?)^```", re.S | re.M
)


@dataclass(frozen=True)
class Block:
    """One Python block: its code, where it starts (1-based line) and why it does not run."""

    code: str
    line: int
    no_run: str | None = None


def python_blocks(page: Path) -> list[Block]:
    """The page's Python blocks in order."""
    text = page.read_text()
    return [
        Block(m["code"], text.count("\n", 0, m.start("code")) + 1, m["why"])
        for m in FENCE.finditer(text)
    ]


def run_block(block: Block, name: str, namespace: dict[str, object]) -> None:
    """Run ``block`` in ``namespace``; a traceback names ``name`` and the page's line."""
    code = "\n" * (block.line - 1) + block.code  # tracebacks show the page's own line numbers
    exec(compile(code, name, "exec"), namespace)
