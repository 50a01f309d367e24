"""Can `make run` listen on HOST:PORT? Checked before migrating and seeding, so a busy port is found first.

Usage: python scripts/check_port.py HOST PORT
Standard library only (it runs before the virtualenv exists, and without Flask it takes milliseconds). Exits 0 when
the address is free; otherwise prints one line to stderr and exits 1.
"""

from __future__ import annotations

import errno
import socket
import sys

# How far above PORT to look for a free port to suggest.
SUGGESTION_RANGE = 100


def bind_error(host: str, port: int) -> OSError | None:
    """Bind as gunicorn will (IPv6 for an address with ':', else IPv4; SO_REUSEADDR), then let go at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            return error
    return None


def problem(host: str, raw_port: str) -> str | None:
    """What keeps `make run` from serving on HOST:PORT, as one line, or None when nothing does."""
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        return f'PORT must be a number from 1 to 65535, got "{raw_port}"'
    port = int(raw_port)
    error = bind_error(host, port)  # an unresolvable HOST is an OSError (socket.gaierror) too
    if error is None:
        return None
    if error.errno == errno.EADDRINUSE:
        candidates = range(port + 1, min(port + SUGGESTION_RANGE, 65535) + 1)
        free = next((candidate for candidate in candidates if bind_error(host, candidate) is None), None)
        suggestion = f"make run PORT={free}" if free else "make run PORT=..."
        return f"port {port} on {host} is in use: stop what uses it or choose another with {suggestion}"
    if error.errno == errno.EACCES:
        return f"port {port} on {host} needs more privileges than this user has: choose a port above 1023 (PORT=)"
    return f"cannot listen on {host}:{port}: {error.strerror} (check HOST= and PORT=)"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: check_port.py HOST PORT", file=sys.stderr)
        return 2
    message = problem(argv[1], argv[2])
    if message:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
