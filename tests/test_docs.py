"""The documentation site: every Python block on its pages runs, and it builds strictly.

A block copied verbatim from the README runs in ``tests/test_readme.py`` and is not run
again here (the slow ones train a flow and an agent); a page's other blocks run in order
in one namespace, so they must not need the names a copied block defines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.markdown_blocks import Block, python_blocks, run_block

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
README_CODE = {block.code for block in python_blocks(REPO / "README.md")}
MAX_NO_RUN = 3  # a block that must not run says why; they stay the exception


def _own_blocks(page: Path) -> list[Block]:
    """The page's blocks that this test runs: not the README's, not marked no-run."""
    return [b for b in python_blocks(page) if b.code not in README_CODE and b.no_run is None]


PAGES_WITH_CODE = [page for page in PAGES if _own_blocks(page)]


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


def test_the_guides_have_examples_of_their_own() -> None:
    with_code = {_name(page) for page in PAGES_WITH_CODE}
    for guide in ("docs/guides/control.md", "docs/guides/own-task.md", "docs/guides/evaluate.md"):
        assert guide in with_code


def test_blocks_that_do_not_run_are_few_and_say_why() -> None:
    skipped = [(page, b) for page in PAGES for b in python_blocks(page) if b.no_run is not None]
    assert len(skipped) <= MAX_NO_RUN, [f"{_name(p)}:{b.line}" for p, b in skipped]
    for page, block in skipped:
        assert len(block.no_run.strip()) >= 10, f"{_name(page)}:{block.line}: say why"  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_name)
def test_page_examples_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for block in _own_blocks(page):
        run_block(block, _name(page), namespace)
    record = namespace.get("record")
    if record is not None:  # the episode examples finish their episode
        assert record.summary()["steps"] > 0  # type: ignore[attr-defined]


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site`` (no banner about mkdocs 2)."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = _mkdocs(REPO / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "planners" / "index.html").exists()
    assert "WARNING" not in result.stderr


# each break, and what the build's complaint must name
BREAKS = {
    "a link to a missing page": ("[gone](guides/no-such-page.md)", "no-such-page.md"),
    "a missing anchor": ("[gone](architecture.md#no-such-heading)", "no-such-heading"),
    "an API reference that does not resolve": ("::: planners.no_such_module", "no_such_module"),
}


@pytest.mark.parametrize("broken", [None, *BREAKS], ids=lambda b: b or "intact")
def test_strict_build_fails_on_a_broken_reference(tmp_path: Path, broken: str | None) -> None:
    """A copy of the site (API pages as stubs, for speed) builds, and fails with one break."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    for api_page in (docs / "api").glob("*.md"):
        api_page.write_text(f"# {api_page.stem}\n")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    handler = config["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    handler["paths"] = [str(REPO)]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    if broken is not None:
        index = docs / "index.md"
        index.write_text(index.read_text() + f"\n{BREAKS[broken][0]}\n")
    result = _mkdocs(tmp_path / "mkdocs.yml", tmp_path / "site")
    if broken is None:
        assert result.returncode == 0, result.stderr[-4000:]
    else:
        assert result.returncode != 0, f"{broken} passed the strict build"
        assert BREAKS[broken][1] in result.stdout + result.stderr, result.stderr[-2000:]
