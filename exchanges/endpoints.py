"""An exchange's API base URL chosen per account (a regional endpoint, a testnet, a proxy, a local fake)."""

from urllib.parse import urlsplit, urlunsplit

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


def check_base_url(url: str) -> str:
    """`url` as scheme://host[:port] (no trailing slash); `ValueError` saying what is wrong.

    https only, except plain http to this machine (a local fake or tunnel): API keys and signed requests must not
    cross a network in the clear. No user:password@ (it would be stored and shown in the clear) and no path, query
    or fragment: ccxt's own paths are kept and put after this host.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("is not a URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (user:password@)")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError("must use https (plain http only to 127.0.0.1 or localhost)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be scheme, host and port only, without a path, query or fragment")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme, host + (f":{port}" if port is not None else ""), "", "", ""))
