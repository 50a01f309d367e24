"""What the browser tests share: `make run` in its own process group on a free port, and Debian's Chromium."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
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


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed (make test installs it when run as root)"
        if os.environ.get("STEADYHAND_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)


# The scheduler's first runs come within seconds of its start; 30 page loads two seconds apart bound the wait.
SCHEDULER_PAGE_LOADS = 30


def free_port() -> int:
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


def wait_until_healthy(server: MakeRun, base_url: str) -> None:
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


@contextmanager
def serve(instance_path: Path) -> Iterator[tuple[str, MakeRun]]:
    """`make run` on a free port with its instance in `instance_path`: (base URL, the process) once /healthz is
    up; stopped on exit."""
    require_chromium()
    port = free_port()
    server = MakeRun(instance_path, port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base_url)
        yield base_url, server
    finally:
        server.stop()


def screenshot_dir() -> Path:
    """Where browser tests save their screenshots: `$STEADYHAND_SCREENSHOT_DIR`, else build/screenshots (CI keeps
    that folder as the run's artifacts)."""
    folder = Path(os.environ.get("STEADYHAND_SCREENSHOT_DIR") or PROJECT_ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
