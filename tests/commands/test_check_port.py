"""`make run` checks HOST:PORT first (scripts/check_port.py): a busy port fails at once, with one line saying what to
do, before any migration, seeding or gunicorn start."""

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "check_port.py"


@pytest.fixture
def busy_port():
    """A port something (this test) listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def check(host, port):
    return subprocess.run([sys.executable, str(SCRIPT), host, str(port)], capture_output=True, text=True, timeout=30)


def test_a_busy_port_fails_with_one_line_naming_a_free_one(busy_port):
    result = check("127.0.0.1", busy_port)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    prefix = f"port {busy_port} on 127.0.0.1 is in use: stop what uses it or choose another with make run PORT="
    assert line.startswith(prefix)
    suggested = int(line.removeprefix(prefix))
    assert suggested > busy_port
    assert check("127.0.0.1", suggested).returncode == 0


def test_a_port_busy_on_localhost_is_busy_for_all_interfaces_too(busy_port):
    result = check("0.0.0.0", busy_port)  # noqa: S104 (the bind is refused: the port is taken)
    assert result.returncode == 1
    assert result.stderr.startswith(f"port {busy_port} on 0.0.0.0 is in use")


def test_a_free_port_passes_silently(busy_port):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    result = check("127.0.0.1", free)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("127.0.0.1", "50x0", 'PORT must be a number from 1 to 65535, got "50x0"'),
        ("127.0.0.1", "70000", 'PORT must be a number from 1 to 65535, got "70000"'),
        ("host.invalid", "5000", "cannot listen on host.invalid:5000: "),
    ],
)
def test_bad_host_or_port_is_one_line(host, port, message):
    result = check(host, port)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message)


def test_make_run_stops_at_a_busy_port_before_migrating(busy_port, tmp_path):
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STEADYHAND_", "DATABASE_URL", "MAKEFLAGS", "MFLAGS"))
    }
    environ["STEADYHAND_INSTANCE_PATH"] = str(tmp_path / "instance")
    result = subprocess.run(
        ["make", "--no-print-directory", "run", f"PORT={busy_port}"],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.splitlines()[0].startswith(f"port {busy_port} on 127.0.0.1 is in use")
    assert "bootstrap" not in result.stdout + result.stderr
    assert not (tmp_path / "instance").exists()  # nothing migrated, nothing seeded
