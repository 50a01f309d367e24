"""Which process does the work: `host:pid` names, and telling when such a process is known to be gone.

Runs, backtests and locks record the process holding them. A process of this host that no longer exists (killed
with SIGKILL, crashed) is known to be gone at once; one of another host can only be presumed gone when its lease or
timeout runs out.
"""

import os
import socket


def worker_name() -> str:
    """host:pid of this process, recorded on what it runs or holds so a person (and `is_gone`) can tell which."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_gone(worker: str) -> bool:
    """Whether the process named `host:pid` (optionally followed by `#tag`) is known not to exist any more: only a
    process of this host can be; anything else, or a name not of that form, may still be running."""
    host, _, rest = worker.partition(":")
    pid = rest.partition("#")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, owned by another user
    return False
