"""One HTTP client per provider SDK and process, shared by every provider instance, user and thread.

An SDK client built without an `http_client` builds its own httpx client, and with it an SSL context that loads the
CA bundle: about 45 ms of CPU, which every scheduled run paid for each provider it built. The SDK client itself (the
key, base URL and retry setting) is light and stays per provider instance, so no key is ever shared; the shared
httpx client (connection pool, TLS context) holds nothing of a user's: the SDK sends the key in each request's
headers, and the client keeps no cookie, so a cookie set on one user's call is never sent with another's.

An httpx client may be shared between threads. A forked process builds its own on first use (pooled connections
are never shared between processes), and a client someone closed is replaced.
"""

import os
import threading
from collections.abc import Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from httpx2 import Client


def no_cookie_jar() -> CookieJar:
    """A cookie jar that accepts and returns no cookie (no domain is allowed)."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class SharedHttpClient:
    """The process's one client built by `build` (an SDK's `DefaultHttpxClient`, keeping its timeouts and pool
    limits), created on first use."""

    def __init__(self, build: "Callable[..., Client]") -> None:
        self._build = build
        self._lock = threading.Lock()
        self._current: tuple[int, Client] | None = None  # (the pid it was built in, the client)

    def get(self) -> "Client":
        current = self._current
        if current is not None and current[0] == os.getpid() and not current[1].is_closed:
            return current[1]
        with self._lock:
            current = self._current
            if current is None or current[0] != os.getpid() or current[1].is_closed:
                current = (os.getpid(), self._build(cookies=no_cookie_jar()))
                self._current = current
            return current[1]
