"""End to end: the README's `make run` serves the app; a real headless Chromium signs in as the demo user."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags that keep Chromium from reaching for the network on a machine without one.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_DEADLINE_SECONDS = 120


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed (make test installs it when run as root)"
        if os.environ.get("STEADYHAND_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)


# The scheduler's first runs come within seconds of its start; 30 page loads two seconds apart bound the wait.
SCHEDULER_PAGE_LOADS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MakeRun:
    """`make run` in its own process group, with its output collected as it comes."""

    def __init__(self, instance_path: Path, port: int) -> None:
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("STEADYHAND_", "DATABASE_URL", "SECRET_KEY", "MAKEFLAGS", "MFLAGS"))
        }
        environ["STEADYHAND_INSTANCE_PATH"] = str(instance_path)
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}", "WORKERS=2"],
            cwd=PROJECT_ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def text(self) -> str:
        return "".join(self.output)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self._reader.join(timeout=5)


def _wait_until_healthy(server: MakeRun, base_url: str) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"make run exited with {server.process.returncode}:\n{server.text()}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)  # polling for readiness, not timing anything
    pytest.fail(f"make run did not answer /healthz within {STARTUP_DEADLINE_SECONDS}s:\n{server.text()}")


@pytest.fixture
def served_app(tmp_path):
    _require_chromium()
    port = _free_port()
    server = MakeRun(tmp_path / "instance", port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(server, base_url)
        yield base_url, server
    finally:
        server.stop()


def test_make_run_serves_healthz_and_the_demo_login_works_in_chromium(served_app, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base_url, server = served_app
    screenshot_dir = Path(os.environ.get("STEADYHAND_SCREENSHOT_DIR", tmp_path))
    with urllib.request.urlopen(f"{base_url}/healthz") as response:
        assert response.read() == b'{"database":"ok","status":"ok"}\n'
    login = re.search(r"Sign in as\s+(\S+)\s+password\s+(\S+)", server.text())
    assert login, server.text()
    email, password = login.groups()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(base_url + "/")
            expect(page).to_have_url(re.compile(r"/login\?next="))
            page.fill("#email", email)
            page.fill("#password", "not the password")
            page.click("button[type=submit]")
            expect(page.get_by_role("status")).to_have_text("Wrong email or password.")

            page.fill("#password", password)
            page.click("button[type=submit]")
            expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Demo trader")
            # The scheduler trades the demo account on the replay from its first minute: the equity may have moved.
            account = page.get_by_role("row", name=re.compile("Demo paper account"))
            expect(account.locator('td[data-label="Equity"]')).to_contain_text(re.compile(r"^\s*\d+\.\d\d USDT"))
            expect(account).to_contain_text("started with 100.00 USDT")
            hourly = page.get_by_role("row").filter(has_text="39,391")  # 33,411 + 5,980 real 1h bars each
            expect(hourly).to_have_count(2)
            expect(hourly.first).to_contain_text("BTC/USDT")
            page.screenshot(path=str(screenshot_dir / "landing.png"), full_page=True)

            # `make run` also started the scheduler: the demo watches run on the replay's candles (one a 10 s).
            ran = page.get_by_role("row").filter(has_text=re.compile(r"bar 2024-01-16 \d\d:00 UTC: succeeded"))
            for _ in range(SCHEDULER_PAGE_LOADS):
                if ran.count() == 2:
                    break
                page.wait_for_timeout(2_000)  # polling the page for the scheduler's work, not timing anything
                page.reload()
            expect(ran).to_have_count(2)
            # The demo's ETH/USDT watch buys on the replay's 09:00 bar: equity (cash plus the ETH at the replay's
            # price) moves off the 100 USDT start, and the position and the run that bought it are on the page.
            change = account.locator('td[data-label="Change vs. start"] .amt').first
            for _ in range(SCHEDULER_PAGE_LOADS):
                if change.inner_text() != "0.00 USDT":
                    break
                page.wait_for_timeout(2_000)  # polling the page for the scheduler's work, not timing anything
                page.reload()
            expect(change).to_have_text(re.compile(r"^[+-]\d+\.\d\d USDT$"))
            expect(page.get_by_role("row").filter(has_text="ETH/USDT 1h").filter(has_text="BUY")).not_to_have_count(0)
            page.screenshot(path=str(screenshot_dir / "landing-trading.png"), full_page=True)
            assert "scheduler.1 | scheduler " in server.text() and "leading" in server.text(), server.text()

            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("status")).to_have_text("Signed out.")
        finally:
            browser.close()
