"""The `Exchange` of a real exchange through ccxt: orders keyed by our client order id, ccxt errors translated."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import ccxt

from exchanges.base import (
    Balance,
    ExchangeError,
    OrderNotFoundError,
    OrderRequest,
    OrderState,
    PermanentExchangeError,
    Ticker,
)
from exchanges.candles import Candle
from exchanges.endpoints import check_base_url
from exchanges.errors import translate_ccxt_error
from exchanges.markets import MarketRules, UnknownSymbolError, market_rules_from_ccxt
from exchanges.orders import OrderSide, OrderStatus, OrderType
from exchanges.timeframes import timeframe_duration

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ccxt logs every request's headers at DEBUG level, and those carry the API key: its log goes nowhere. A logger
# outside the logging registry, so no logging configuration (nor a test's capture) can switch it back on.
_WIRE_LOG = logging.Logger("ccxt wire log (silenced)")
_WIRE_LOG.disabled = True

# "canceling" (Binance PENDING_CANCEL) may still fill. Any status ccxt does not unify, and a missing one (an
# acknowledgement without a status), count as open: a non-final state keeps the order under reconciliation.
_STATUSES = {
    "open": OrderStatus.OPEN,
    "canceling": OrderStatus.OPEN,
    "closed": OrderStatus.CLOSED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}

# Most ccxt exchanges take our id as the unified `clientOrderId` param and send it under their own name (Binance:
# newClientOrderId, Kraken: cl_ord_id). ccxt's coinbase drops that param and only passes its raw field through.
_CLIENT_ORDER_ID_PARAM = {"coinbase": "client_order_id"}

# Exchanges whose ccxt fetch_order/cancel_order are known to address an order by `clientOrderId` alone and to report
# a missing one as OrderNotFound (Binance: origClientOrderId, -2013).
_LOOKUP_BY_CLIENT_ID = frozenset({"binance", "binanceus"})


@dataclass(frozen=True)
class _Listing:
    """How to find an order by our id among an exchange's listed orders.

    `page`: the most orders one list request returns; a full page may have more behind it, so it proves no absence.
    `filter_by_id`: the exchange filters its lists by client order id itself (Kraken's cl_ord_id).
    """

    page: int
    filter_by_id: bool


# Exchanges whose ccxt cannot look an order up by our id (coinbase's fetch_order takes its own id only, Kraken's reads
# it as an integer userref) but lists orders with the clientOrderId it parses (coinbase: client_order_id, Kraken:
# cl_ord_id). A lookup wrongly answering "no such order" would let place_order_once send a second order, so an
# exchange whose list paging has not been checked here refuses instead. Page sizes: ccxt's coinbase default, the fixed
# page of Kraken's ClosedOrders.
_LOOKUP_BY_LISTING = {
    "coinbase": _Listing(page=100, filter_by_id=False),
    "kraken": _Listing(page=50, filter_by_id=True),
}


class CcxtExchange:
    """Any ccxt exchange id behind our `Exchange` protocol.

    `markets`: a bundled ccxt markets snapshot, so no markets request is made; without it the markets are loaded
    on first use, once. `options`: extra ccxt constructor settings (e.g. {"timeout": 10_000}). `base_url`: send every
    API request to this scheme://host[:port] instead (see `exchanges.endpoints.check_base_url`; `ValueError` when it
    is not acceptable), keeping ccxt's paths; it applies after `sandbox`.
    """

    def __init__(
        self,
        exchange_id: str,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        sandbox: bool = False,
        markets: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        base_url: str | None = None,
    ) -> None:
        exchange_class = getattr(ccxt, exchange_id, None)
        if not isinstance(exchange_class, type) or not issubclass(exchange_class, ccxt.Exchange):
            raise ValueError(f"ccxt has no exchange {exchange_id!r}")
        self.id = exchange_id
        self.sandbox = sandbox
        self._secrets = (api_key, secret, password)
        config: dict[str, Any] = {"timeout": 15_000, **(options or {}), "enableRateLimit": True, "logger": _WIRE_LOG}
        credentials = {"apiKey": api_key, "secret": secret, "password": password}
        config.update({name: value for name, value in credentials.items() if value})
        # Binance refuses open orders without a symbol unless told that its heavier rate-limit weight is accepted.
        config["options"] = {"warnOnFetchOpenOrdersWithoutSymbol": False, **config.get("options", {})}
        self._client: ccxt.Exchange = exchange_class(config)
        if sandbox:
            # Checked here: for exchanges without one (coinbase, kraken) ccxt fails with a bare TypeError.
            if not self._client.urls.get("test"):
                raise ValueError(f"{exchange_id} has no sandbox/testnet in ccxt")
            self._client.set_sandbox_mode(True)
        if base_url is not None:
            self._client.urls["api"] = _rebased(self._client.urls["api"], check_base_url(base_url))
        if markets:
            self._client.set_markets(markets)

    def __repr__(self) -> str:
        return f"CcxtExchange({self.id!r}, sandbox={self.sandbox}, authenticated={bool(self._secrets[0])})"

    def market_rules(self, symbol: str) -> MarketRules:
        return market_rules_from_ccxt(self._market(symbol))

    def fetch_candles(self, symbol: str, timeframe: str, limit: int, now: datetime) -> list[Candle]:
        """The last `limit` candles that have closed by `now` (the still-forming candle is left out)."""
        self._market(symbol)
        step = timeframe_duration(timeframe)
        rows = self._call("fetch candles", lambda: self._client.fetch_ohlcv(symbol, timeframe, limit=limit + 1))
        candles = [
            Candle(
                open_time=_EPOCH + timedelta(milliseconds=int(row[0])),
                open=_decimal(row[1]),
                high=_decimal(row[2]),
                low=_decimal(row[3]),
                close=_decimal(row[4]),
                volume=_decimal(row[5]),
            )
            for row in rows
        ]
        return [candle for candle in candles if candle.open_time + step <= now][-limit:]

    def fetch_ticker(self, symbol: str) -> Ticker:
        self._market(symbol)
        ticker = self._call("fetch ticker", lambda: self._client.fetch_ticker(symbol))
        if ticker.get("last") is None:
            raise PermanentExchangeError(f"{self.id} has no last price for {symbol}")
        return Ticker(
            symbol=symbol,
            last=_decimal(ticker["last"]),
            bid=_optional_decimal(ticker.get("bid")),
            ask=_optional_decimal(ticker.get("ask")),
            # Some exchanges send no ticker time; the moment we received it is the best estimate then.
            at=_time(ticker.get("timestamp")) or datetime.now(UTC),
        )

    def fetch_balances(self) -> dict[str, Balance]:
        """Balances of the assets held; assets at zero are left out (Binance lists every asset it trades)."""
        raw = self._call("fetch balances", self._client.fetch_balance)
        balances = {}
        for asset, total in raw.get("total", {}).items():
            entry = raw.get(asset, {})
            free, used = _decimal(entry.get("free")), _decimal(entry.get("used"))
            if free or used or _decimal(total):
                balances[asset] = Balance(asset=asset, free=free, used=used)
        return balances

    def create_order(self, request: OrderRequest) -> OrderState:
        self._market(request.symbol)
        params = {_CLIENT_ORDER_ID_PARAM.get(self.id, "clientOrderId"): request.client_order_id}
        order = self._call(
            "create order",
            lambda: self._client.create_order(
                request.symbol,
                request.order_type.value,
                request.side.value,
                float(request.amount),
                float(request.price) if request.price is not None else None,
                params,
            ),
            placing_order=True,
        )
        return _order_state(order, request.client_order_id, request)

    def fetch_order(self, client_order_id: str, symbol: str) -> OrderState | None:
        """The order with this client order id, or None if the exchange has no such order.

        Binance looks the id up itself. Coinbase and Kraken cannot: the order is searched for among the symbol's open
        orders and its order history (every status where ccxt lists them, else the closed and canceled ones), and
        None means each list came back whole without it. Raises `PermanentExchangeError` when the exchange cannot list
        its history or a list fills a page (ours may be on the next), never answering None on a guess.

        A filled order's fee comes from its trades when the order itself carries none (see `_with_trade_fees`, whose
        errors this raises too).
        """
        self._market(symbol)
        if self.id not in _LOOKUP_BY_CLIENT_ID:
            found = self._find_listed(client_order_id, symbol, "look up order")
            if found is None:
                return None
            return self._with_trade_fees(_order_state(found, client_order_id), "look up order")
        try:
            order = self._client.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            return None
        except ccxt.BaseError as error:
            raise self._translate(error, "look up order") from None
        return self._with_trade_fees(_order_state(order, client_order_id), "look up order")

    def cancel_order(self, client_order_id: str, symbol: str) -> OrderState:
        """Cancel by client order id; the order's state after the cancel. `OrderNotFoundError` when there is none;
        where the order is found by listing (see `fetch_order`), the same errors as that lookup.

        A fill made before the cancel has its fee read from the order's trades when the answer carries none (see
        `_with_trade_fees`); should that read fail, the cancel has still happened and `fetch_order` tells the fill.
        """
        self._market(symbol)
        if self.id in _LOOKUP_BY_CLIENT_ID:
            order = self._call(
                "cancel order", lambda: self._client.cancel_order(None, symbol, {"clientOrderId": client_order_id})
            )
            # Binance answers with the cancel request's own generated id as clientOrderId; ours is the one asked for.
            return self._with_trade_fees(_order_state(order, client_order_id), "cancel order")
        found = self._find_listed(client_order_id, symbol, "cancel order")
        if found is None:
            raise OrderNotFoundError(f"{self.id} cancel order: no order {client_order_id} on {symbol}")
        exchange_order_id = found["id"]
        self._call("cancel order", lambda: self._client.cancel_order(exchange_order_id, symbol))
        # Coinbase and Kraken answer a cancel without the order; read back, it shows any fill made before the cancel.
        order = self._call("cancel order", lambda: self._client.fetch_order(exchange_order_id, symbol))
        return self._with_trade_fees(_order_state(order, client_order_id), "cancel order")

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderState]:
        if symbol is not None:
            self._market(symbol)
        orders = self._call("fetch open orders", lambda: self._client.fetch_open_orders(symbol))
        return [_order_state(order) for order in orders]

    def _with_trade_fees(self, state: OrderState, action: str) -> OrderState:
        """`state` with `fee` and `fee_currency` taken from the order's trades when it reports a fill but ccxt found
        no fee on the order: Binance's order query and cancel answer carry no commission, only its trades do.

        The trades' fees are summed per currency; paid in several currencies, the first one counts (as in `_fee`).
        An exchange that cannot list an order's trades leaves `state` as it is, its fee unknown (0, currency None).
        Raises the translated error when the trades cannot be read (`TemporaryExchangeError` for network trouble,
        timeouts or maintenance: callers look the order up again rather than record a fill without its fee).
        """
        order_id = state.exchange_order_id
        if not state.filled or state.fee_currency is not None or order_id is None:
            return state
        if not self._client.has.get("fetchOrderTrades"):
            return state
        trades = self._call(action, lambda: self._client.fetch_order_trades(order_id, state.symbol))
        fees: dict[str, Decimal] = {}
        for trade in trades:
            for fee in trade.get("fees") or [trade.get("fee")]:
                if fee and fee.get("cost") is not None and fee.get("currency"):
                    fees[fee["currency"]] = fees.get(fee["currency"], Decimal(0)) + _decimal(fee["cost"])
        if not fees:
            return state
        currency, cost = next(iter(fees.items()))
        return replace(state, fee=cost, fee_currency=currency)

    def _find_listed(self, client_order_id: str, symbol: str, action: str) -> dict[str, Any] | None:
        """The ccxt order with this clientOrderId among the symbol's open orders and order history, or None."""
        listing = _LOOKUP_BY_LISTING.get(self.id)
        if listing is None:
            raise PermanentExchangeError(f"{self.id}: {action} by client order id is not supported yet")
        has = self._client.has
        if not has.get("fetchOpenOrders") or not (has.get("fetchOrders") or has.get("fetchClosedOrders")):
            raise PermanentExchangeError(f"{self.id}: {action} {client_order_id}: the exchange cannot list past orders")
        history = self._client.fetch_orders if has.get("fetchOrders") else self._client.fetch_closed_orders
        params = {"clientOrderId": client_order_id} if listing.filter_by_id else {}
        for fetch in (self._client.fetch_open_orders, history):
            # No `since`: a window would hide an order older than it, and "not found" must mean not there at all.
            orders: list[dict[str, Any]] = self._call(action, partial(fetch, symbol, None, listing.page, dict(params)))
            found = next((order for order in orders if order.get("clientOrderId") == client_order_id), None)
            if found is not None:
                return found
            if len(orders) >= listing.page:
                raise PermanentExchangeError(
                    f"{self.id}: {action} {client_order_id}: more than {listing.page} orders listed on {symbol}, "
                    "it may be among those not listed"
                )
        return None

    def _market(self, symbol: str) -> dict[str, Any]:
        markets: dict[str, dict[str, Any]] = self._call("load markets", self._client.load_markets)
        try:
            return markets[symbol]
        except KeyError:
            raise UnknownSymbolError(f"unknown symbol {symbol!r} on {self.id}") from None

    def _call[T](self, action: str, call: Callable[[], T], *, placing_order: bool = False) -> T:
        try:
            return call()
        except ccxt.BaseError as error:
            # `from None`: ccxt's own message holds request URLs; ours keeps the useful part, scrubbed.
            raise self._translate(error, action, placing_order=placing_order) from None

    def _translate(self, error: Exception, action: str, *, placing_order: bool = False) -> ExchangeError:
        return translate_ccxt_error(error, self.id, action, secrets=self._secrets, placing_order=placing_order)


def _rebased(api: Any, base_url: str) -> Any:
    """ccxt's `urls["api"]` (one URL, or a dict of them per API section, nested on some exchanges) with each URL's
    scheme and host replaced by `base_url`'s, its path kept."""
    if isinstance(api, dict):
        return {section: _rebased(url, base_url) for section, url in api.items()}
    return base_url + urlsplit(api).path


def _order_state(
    order: dict[str, Any], client_order_id: str | None = None, request: OrderRequest | None = None
) -> OrderState:
    side = order.get("side") or (request.side.value if request else None)
    fee, fee_currency = _fee(order)
    return OrderState(
        client_order_id=client_order_id or order.get("clientOrderId") or "",
        exchange_order_id=order.get("id"),
        symbol=order.get("symbol") or (request.symbol if request else ""),
        # ccxt's JSON may carry no side, and without a request there is none to fall back on: OrderSide(None) then
        # raises ValueError, which is the wanted failure (an order of unknown side must not be recorded).
        side=OrderSide(side),  # type: ignore[arg-type]
        order_type=_order_type(order, request),
        status=_STATUSES.get(order.get("status") or "", OrderStatus.OPEN),
        amount=_optional_decimal(order.get("amount")) or (request.amount if request else Decimal(0)),
        filled=_decimal(order.get("filled")),
        average_price=_optional_decimal(order.get("average")),
        fee=fee,
        fee_currency=fee_currency,
        updated_at=_time(order.get("lastUpdateTimestamp") or order.get("timestamp")),
    )


def _order_type(order: dict[str, Any], request: OrderRequest | None) -> OrderType:
    kind = order.get("type")
    if kind in OrderType._value2member_map_ and isinstance(kind, str):  # every value there is a str: narrows only
        return OrderType(kind)
    if request is not None:
        return request.order_type
    # Orders placed by hand (stop-limit, ...) still lock funds and must be seen; a priced order rests like a limit.
    return OrderType.LIMIT if order.get("price") else OrderType.MARKET


def _fee(order: dict[str, Any]) -> tuple[Decimal, str | None]:
    """The fee charged, summed per currency by ccxt; when paid in several currencies, the first one."""
    fees = [fee for fee in order.get("fees") or [order.get("fee")] if fee and fee.get("cost") is not None]
    if not fees:
        return Decimal(0), None
    return _decimal(fees[0]["cost"]), fees[0].get("currency")


def _decimal(value: Any) -> Decimal:
    # str() first: Decimal(0.1) would carry the float's binary noise into our money.
    return Decimal(str(value)) if value is not None else Decimal(0)


def _optional_decimal(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def _time(milliseconds: Any) -> datetime | None:
    return _EPOCH + timedelta(milliseconds=int(milliseconds)) if milliseconds is not None else None
