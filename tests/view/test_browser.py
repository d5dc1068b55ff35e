"""The view as a person sees it: a recorded episode served, loaded in headless Chromium.

Mechanism protected: ``imle-mpc view --replay`` serves the scene (viser, WebGL) on the
loopback address, and the page a browser renders shows it: the robot, the obstacles,
the proposals with the infeasible ones red, the chosen plan, the guard's event. The
screenshot is judged by its pixels (a page that has not drawn the scene is white: the
checker refuses a blank image, below).

Needs Chromium (``apt-get install chromium``; CI installs it) and Playwright's Python
package (the ``test`` extra; it drives the installed Chromium, nothing is downloaded).
``IMLE_MPC_VIEW_SCREENSHOT=PATH`` keeps the screenshot (the README's picture).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.view.conftest import Recorded

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
CHROMIUM_FLAGS = [
    "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]  # fmt: skip
"""Software WebGL (SwiftShader) in a sandbox-less container, and no calls home."""
WINDOW = {"width": 1400, "height": 850}
PANEL = 350
"""Pixels on the right that the control panel covers."""
TOAST = 160
"""Pixels at the top left where viser's "software WebGL" notice sits (closed, if it can be)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scene_pixels(image: np.ndarray) -> dict[str, int]:
    """Counts of what the 3-D area of a screenshot (Shape=(h, w, 3), uint8) shows."""
    area = image[TOAST:, : image.shape[1] - PANEL].astype(np.int64)
    R, G, B = area[..., 0], area[..., 1], area[..., 2]
    quantised = (area // 16).reshape(-1, 3)
    _, counts = np.unique(quantised, axis=0, return_counts=True)
    return {
        "drawn": int((area.min(axis=-1) < 200).sum()),  # not the white background
        "robot": int(((B > R + 60) & (B > 140)).sum()),  # the blue sphere and trail
        "red": int(((R > 180) & (G < 120) & (B < 120)).sum()),  # infeasible, the event ring
        "plan": int(((R > 180) & (G < 110) & (B > 180)).sum()),  # magenta
        "colours": int((counts > 20).sum()),
    }


def shows_the_scene(image: np.ndarray) -> bool:
    """Whether a screenshot shows the drawn scene, not a blank or half-loaded page."""
    n = scene_pixels(image)
    area = (image.shape[0] - TOAST) * (image.shape[1] - PANEL)
    return (
        n["drawn"] > 0.01 * area and n["robot"] > 100 and n["red"] > 20 and n["plan"] > 10
        and n["colours"] >= 15
    )  # fmt: skip


def test_the_checker_refuses_a_blank_page() -> None:
    assert not shows_the_scene(np.full((WINDOW["height"], WINDOW["width"], 3), 255, np.uint8))


class _Server:
    """``imle-mpc view --replay`` as a subprocess; its stderr collected by a thread."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imle_mpc.cli", "view", *args], cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)

    def url(self, timeout: float = 240.0) -> str:
        """The address it announces it serves on."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.err:
                if line.startswith("imle-mpc view: serving "):
                    return line.split()[3].rstrip(";")
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"the view never said it serves: {''.join(self.err)[-2000:]}")

    def stop(self) -> str:
        self.proc.terminate()  # SIGTERM: the view closes and prints its summary
        out, _ = self.proc.communicate(timeout=60)
        return out


@pytest.mark.slow
def test_the_replayed_view_shows_the_scene_in_chromium(recorded: Recorded, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install chromium): the browser check needs one")
    pytest.importorskip("viser", reason="the view extra (viser) serves the page")
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="Playwright's Python package drives Chromium (test extra)"
    )
    step = int(np.flatnonzero(recorded.recording.fallbacks != "")[0])  # a guard event
    port = _free_port()
    server = _Server(["--replay", str(recorded.path), "--port", str(port), "--step", str(step),
                      "--duration", "600", "--json"])  # fmt: skip
    try:
        url = server.url()
        assert url == f"http://127.0.0.1:{port}"  # the loopback address unless --host says
        shot = tmp_path / "view.png"
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
            )
            page = browser.new_page(viewport=WINDOW)
            page.goto(url, timeout=120_000)
            page.wait_for_selector("canvas", timeout=120_000)
            # the panel says which step it shows once the scene's messages arrived
            page.wait_for_function(
                f"document.body.innerText.includes('step {step} ·')", timeout=120_000
            )
            for notice in page.locator(".mantine-Notification-closeButton").all():
                notice.click()  # viser's "software WebGL" notice: not part of the scene
            page.wait_for_timeout(4000)  # frames rendered after the last message
            text = page.inner_text("body")
            page.screenshot(path=str(shot))
            browser.close()
    finally:
        summary = server.stop()
    assert "guard: no feasible sample" in text
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("RGB"))
    assert shows_the_scene(image), scene_pixels(image)
    assert '"command": "view"' in summary.strip().splitlines()[-1]
    keep = os.environ.get("IMLE_MPC_VIEW_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
