"""The browser fixture: one headless Chromium per test module (skipped without Chromium unless CI is set)."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.support.browser import CHROMIUM_FLAGS, Page, chromium
from tests.support.server import wait_until


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1000", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    port_file = profile / "DevToolsActivePort"
    try:
        wait_until(
            lambda: port_file.exists() and port_file.read_text().strip(), 30, 0.05, "chromium's DevToolsActivePort"
        )
        port = int(port_file.read_text().splitlines()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        yield page
        page.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
