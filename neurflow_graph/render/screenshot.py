"""Render an HTML file to PNG with headless Chromium, when one is installed (optional: pages need no browser)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from neurflow_graph.errors import NeurflowGraphError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")
CHROMIUM_ENV = "NEURFLOW_GRAPH_CHROMIUM"


class RenderError(NeurflowGraphError):
    """A page could not be rendered to PNG (no browser, or the browser failed)."""


def find_chromium() -> str | None:
    """Path of a Chromium-like browser: `$NEURFLOW_GRAPH_CHROMIUM`, else the first of BROWSERS on PATH."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html_path: str | os.PathLike[str], png_path: str | os.PathLike[str], width: int = 1400,
               height: int = 1000, timeout: float = 90.0) -> Path:
    """Screenshot `html_path` at width×height pixels into `png_path` (headless, no sandbox, no GPU)."""
    browser = find_chromium()
    if browser is None:
        raise RenderError(f"no headless browser found (looked for {', '.join(BROWSERS)} on PATH, and "
                          f"${CHROMIUM_ENV}); install chromium or open the HTML page instead")
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="neurflow-chromium-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   f"--user-data-dir={profile}", f"--window-size={int(width)},{int(height)}",
                   f"--screenshot={png_path}", html_path.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RenderError(f"{browser} could not render {html_path.name}: {type(exc).__name__}") from None
    if not png_path.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise RenderError(f"{browser} wrote no screenshot of {html_path.name} (exit {done.returncode}): {last}")
    return png_path
