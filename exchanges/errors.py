"""ccxt exceptions translated into our error hierarchy (exchanges.base), with messages safe to store and show."""

import re
from collections.abc import Iterable

import ccxt

from exchanges.base import (
    AuthenticationError,
    ExchangeError,
    ExchangeTimeoutError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    PermanentExchangeError,
    RateLimitedError,
    TemporaryExchangeError,
)

# First match wins, so subclasses come before their parents (ccxt.OrderNotFound is an InvalidOrder).
_TRANSLATION: tuple[tuple[type[Exception], type[ExchangeError], str], ...] = (
    (ccxt.RequestTimeout, ExchangeTimeoutError, "did not answer in time"),
    (ccxt.DDoSProtection, RateLimitedError, "is rate limiting us"),
    (ccxt.RateLimitExceeded, RateLimitedError, "is rate limiting us"),
    (ccxt.OnMaintenance, TemporaryExchangeError, "is under maintenance"),
    (ccxt.ExchangeNotAvailable, TemporaryExchangeError, "is not available"),
    (ccxt.NetworkError, TemporaryExchangeError, "could not be reached"),
    # Not a NetworkError in ccxt, but these mean "failed on the exchange's side, outcome unknown, try again"
    # (Binance -1000/-1001/-1006, unparsable responses): retrying after a lookup is the safe reading.
    (ccxt.OperationFailed, TemporaryExchangeError, "failed on its side"),
    (ccxt.InsufficientFunds, InsufficientFundsError, "reports insufficient funds"),
    (ccxt.OrderNotFound, OrderNotFoundError, "does not know the order"),
    (ccxt.InvalidOrder, InvalidOrderError, "rejected the order"),
    (ccxt.AuthenticationError, AuthenticationError, "refused the credentials"),  # also PermissionDenied, Suspended
    (ccxt.ExchangeError, PermanentExchangeError, "rejected the request"),
)

# ccxt messages can carry a full request URL; the query of a signed request holds the signature and timestamp.
_URL_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")
_MAX_DETAIL = 300


def translate_ccxt_error(
    error: Exception, exchange_id: str, action: str, *, secrets: Iterable[str | None] = (), placing_order: bool = False
) -> ExchangeError:
    """Our error for a ccxt exception raised while doing `action` (e.g. "create order").

    `placing_order`: ccxt reports some order rejections as BadRequest (Binance -1013 "Filter failure: NOTIONAL");
    while placing an order a malformed request is a rejected order, which is what the caller must handle.
    """
    our_class: type[ExchangeError]
    if placing_order and isinstance(error, ccxt.BadRequest):
        our_class, problem = InvalidOrderError, "rejected the order"
    else:
        our_class, problem = next(
            ((ours, text) for theirs, ours, text in _TRANSLATION if isinstance(error, theirs)),
            (PermanentExchangeError, "failed"),
        )
    detail = _safe_detail(str(error), exchange_id, secrets)
    message = f"{exchange_id} {problem} ({action}: {error.__class__.__name__}"
    return our_class(f"{message}: {detail})" if detail else f"{message})")


def _safe_detail(text: str, exchange_id: str, secrets: Iterable[str | None]) -> str:
    text = _URL_QUERY.sub(r"\1", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = text.removeprefix(exchange_id).strip()
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "..."
