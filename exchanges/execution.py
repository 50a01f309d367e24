"""Exactly-once order placement and retried reads over any `Exchange`.

A timeout on "create order" does not tell whether the exchange received the order. Sending it again could buy twice,
so before any new attempt the order is looked up by its client order id (derived from the decision, so every attempt
carries the same one); only an exchange answer of "no such order" allows another create.
"""

import re
import time
from collections.abc import Callable

from exchanges.base import Exchange, ExchangeError, OrderRequest, OrderState, TemporaryExchangeError

# Letters and digits only: the intersection of what Binance ([.A-Z:/a-z0-9_-]{1,36}), OKX ([a-zA-Z0-9]{1,32}),
# Kraken and Bybit accept, so the same id works on every exchange the connector supports.
_CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_ATTEMPT_TAG = re.compile(r"^[A-Za-z0-9]{0,8}$")


class OrderOutcomeUnknownError(ExchangeError):
    """The exchange may or may not hold the order. Neither temporary (a blind retry could place it twice) nor
    permanent (it may have been placed): reconcile with `fetch_order` before deciding anything else."""

    code = "ORDER_OUTCOME_UNKNOWN"


def client_order_id_for(decision_id: int, account_id: int, attempt_tag: str = "") -> str:
    """The client order id of a decision's order on an account; the same inputs always give the same id.

    `attempt_tag` distinguishes a deliberate new order for the same decision (e.g. a re-entry after a cancel);
    retries of one placement must NOT change it, or the exchange could not tell them apart.
    """
    if decision_id < 0 or account_id < 0:
        raise ValueError("decision and account ids must not be negative")
    if not _ATTEMPT_TAG.match(attempt_tag):
        raise ValueError(f"attempt tag {attempt_tag!r} must be up to 8 letters or digits")
    # Decimal digits between letter separators: readable in the exchange's UI and unambiguous to parse back.
    client_order_id = f"sh{account_id}d{decision_id}" + (f"t{attempt_tag}" if attempt_tag else "")
    if not _CLIENT_ORDER_ID.match(client_order_id):
        raise ValueError(f"client order id {client_order_id!r} is longer than the 32 characters exchanges accept")
    return client_order_id


def place_order_once(
    exchange: Exchange,
    request: OrderRequest,
    *,
    max_attempts: int = 4,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> OrderState:
    """Place `request` at most once, retrying temporary failures with exponential backoff.

    After a temporary failure of a create, the next attempt first looks the order up: found → returned as is;
    "not found" → created again; the lookup failing temporarily → looked up again on the next attempt (never a blind
    create). Permanent errors of a create (insufficient funds, invalid order, bad key) are raised at once, never
    retried. `OrderOutcomeUnknownError` when the exchange might hold the order but would not say.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    may_exist = False
    last_error: TemporaryExchangeError | None = None
    for attempt in range(max_attempts):
        if attempt:
            # Also gives a create still in flight inside the exchange time to land before the lookup asks for it.
            sleep(base_delay * 2 ** (attempt - 1))
        if may_exist:
            try:
                found = exchange.fetch_order(request.client_order_id, request.symbol)
            except TemporaryExchangeError as error:
                last_error = error
                continue
            except ExchangeError as error:
                raise OrderOutcomeUnknownError(
                    f"order {request.client_order_id} on {exchange.id}: outcome unknown, lookup failed ({error})"
                ) from error
            if found is not None:
                return found
        try:
            return exchange.create_order(request)
        except TemporaryExchangeError as error:
            last_error = error
            may_exist = True
    raise OrderOutcomeUnknownError(
        f"order {request.client_order_id} on {exchange.id}: outcome unknown after {max_attempts} attempts "
        f"(last: {last_error})"
    ) from last_error


def retry_temporary[T](
    call: Callable[[], T],
    *,
    max_attempts: int = 4,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, retried with exponential backoff on temporary exchange errors. For reads only: a retried write
    could happen twice (orders go through `place_order_once`)."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    for attempt in range(max_attempts - 1):
        try:
            return call()
        except TemporaryExchangeError:
            sleep(base_delay * 2**attempt)
    return call()


def exit_client_order_id(position_id: int, account_id: int, attempt: int) -> str:
    """The client order id of the `attempt`-th exit order (from 1) of a position. Each attempt is a new order (the
    previous one was refused or only partly filled), so each gets its own id; a retry of one placement keeps it."""
    if position_id < 0 or account_id < 0 or attempt < 1:
        raise ValueError("position and account ids must not be negative, attempts count from 1")
    client_order_id = f"sh{account_id}p{position_id}x{attempt}"
    if not _CLIENT_ORDER_ID.match(client_order_id):
        raise ValueError(f"client order id {client_order_id!r} is longer than the 32 characters exchanges accept")
    return client_order_id
