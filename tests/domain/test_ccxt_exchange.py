"""The ccxt connector: ccxt's real request, signing and parsing code against recorded Binance responses (no network),
error translation, and exactly-once order placement under injected faults."""

import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import ccxt
import pytest
import requests
import responses

from exchanges.base import (
    AuthenticationError,
    ExchangeTimeoutError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    OrderRequest,
    PermanentExchangeError,
    RateLimitedError,
    TemporaryExchangeError,
)
from exchanges.ccxt_exchange import CcxtExchange
from exchanges.errors import translate_ccxt_error
from exchanges.execution import OrderOutcomeUnknownError, client_order_id_for, place_order_once, retry_temporary
from exchanges.markets import UnknownSymbolError
from exchanges.orders import OrderSide, OrderStatus, OrderType
from tests.conftest import PROJECT_ROOT

RECORDINGS = PROJECT_ROOT / "tests" / "recordings" / "binance"
MARKETS = json.loads((PROJECT_ROOT / "data" / "markets" / "binance_markets_snapshot.json").read_text())
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

API = "https://api.binance.com/api/v3"
ORDER_URL = re.compile(re.escape(f"{API}/order") + r"(\?.*)?$")
MY_TRADES_URL = re.compile(re.escape(f"{API}/myTrades") + r"\?.*")
MARKET_BUY = OrderRequest("BTC/USDT", OrderSide.BUY, OrderType.MARKET, Decimal("0.00053"), "sh1d42")


def recording(name):
    return json.loads((RECORDINGS / name).read_text())


def binance(**kwargs):
    # rateLimit 0: ccxt's throttle (enableRateLimit stays on) would otherwise really sleep between recorded requests.
    return CcxtExchange("binance", api_key=API_KEY, secret=SECRET, markets=MARKETS, options={"rateLimit": 0}, **kwargs)


def query_of(call):
    """The parameters a recorded request sent: query string for GET/DELETE, form body for POST."""
    request = call.request
    raw = request.body if request.method == "POST" else urlsplit(request.url).query
    raw = raw.decode() if isinstance(raw, bytes) else raw
    return raw, {name: values[0] for name, values in parse_qs(raw).items()}


def calls(method):
    return [call for call in responses.calls if call.request.method == method]


def paths():
    return [urlsplit(call.request.url).path.rsplit("/", 1)[1] for call in responses.calls]


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


# --- markets, reads ----------------------------------------------------------------------------------------------


@responses.activate
def test_market_rules_come_from_the_snapshot_without_any_request():
    rules = binance().market_rules("BTC/USDT")
    assert (rules.amount_step, rules.price_step, rules.min_notional, rules.taker_fee) == (
        Decimal("0.00001"),
        Decimal("0.01"),
        Decimal("5.0"),
        Decimal("0.001"),
    )
    with pytest.raises(UnknownSymbolError, match="DOGE/USDT"):
        binance().market_rules("DOGE/USDT")
    assert len(responses.calls) == 0


@responses.activate
def test_without_a_snapshot_markets_are_loaded_once_from_exchange_info():
    exchange_info = json.loads((PROJECT_ROOT / "data" / "markets" / "binance_exchangeInfo_min.json").read_text())
    responses.get(f"{API}/exchangeInfo", json=exchange_info)
    # ccxt's binance loads the futures markets too by default; none are listed here.
    responses.get("https://fapi.binance.com/fapi/v1/exchangeInfo", json={**exchange_info, "symbols": []})
    responses.get("https://dapi.binance.com/dapi/v1/exchangeInfo", json={**exchange_info, "symbols": []})
    exchange = CcxtExchange("binance", options={"rateLimit": 0})
    assert exchange.market_rules("BTC/USDT").min_notional == Decimal("5.0")
    assert exchange.market_rules("ETH/USDT").amount_step == Decimal("0.0001")
    assert len(responses.calls) == 3


@responses.activate
def test_balances_are_decimals_and_zero_assets_are_left_out():
    responses.get(re.compile(re.escape(f"{API}/account") + r"\?.*"), json=recording("account.json"))
    balances = binance().fetch_balances()
    assert set(balances) == {"BTC", "USDT"}
    assert balances["USDT"].free == Decimal("45.0714424")
    assert balances["USDT"].used == Decimal("5.4")
    assert balances["USDT"].total == Decimal("50.4714424")
    assert balances["BTC"].free == Decimal("0.00052947")
    _, sent = query_of(responses.calls[0])
    assert "signature" in sent and responses.calls[0].request.headers["X-MBX-APIKEY"] == API_KEY


@responses.activate
def test_ticker():
    responses.get(f"{API}/ticker/24hr?symbol=BTCUSDT", json=recording("ticker_24hr_BTCUSDT.json"))
    ticker = binance().fetch_ticker("BTC/USDT")
    assert (ticker.last, ticker.bid, ticker.ask) == (Decimal("93450.12"), Decimal("93450.11"), Decimal("93450.12"))
    assert ticker.at == datetime(2025, 1, 1, 11, 13, 20, 123000, tzinfo=UTC)


@responses.activate
def test_candles_leave_out_the_forming_one():
    klines = json.loads((PROJECT_ROOT / "tests" / "recordings" / "binance_klines_BTCUSDT_1h.json").read_text())
    responses.get(re.compile(re.escape(f"{API}/klines") + r"\?.*"), json=klines)
    now = datetime.fromtimestamp(klines[-1][0] / 1000, UTC).replace(minute=30)
    candles = binance().fetch_candles("BTC/USDT", "1h", 24, now)
    assert len(candles) == 24
    assert candles[-1].open_time == datetime.fromtimestamp(klines[-2][0] / 1000, UTC)
    assert candles[-1].close == Decimal(klines[-2][4])


@responses.activate
def test_sandbox_mode_talks_to_the_binance_testnet():
    responses.get(
        "https://testnet.binance.vision/api/v3/ticker/24hr?symbol=BTCUSDT", json=recording("ticker_24hr_BTCUSDT.json")
    )
    assert binance(sandbox=True).fetch_ticker("BTC/USDT").last == Decimal("93450.12")


# --- orders ------------------------------------------------------------------------------------------------------


@responses.activate
def test_create_order_sends_our_client_order_id_signed_with_the_api_key():
    responses.post(f"{API}/order", json=recording("order_create_full_market_buy.json"))
    order = binance().create_order(MARKET_BUY)

    raw, sent = query_of(responses.calls[0])
    assert sent["newClientOrderId"] == "sh1d42"
    assert (sent["symbol"], sent["side"], sent["type"], sent["quantity"]) == ("BTCUSDT", "BUY", "MARKET", "0.00053")
    assert sent["newOrderRespType"] == "FULL"
    unsigned = raw.rsplit("&signature=", 1)[0]
    expected = hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
    assert sent["signature"] == expected
    assert responses.calls[0].request.headers["X-MBX-APIKEY"] == API_KEY
    assert SECRET not in raw

    assert order.client_order_id == "sh1d42"
    assert order.exchange_order_id == "40172345112"
    assert (order.status, order.order_type, order.side) == (OrderStatus.CLOSED, OrderType.MARKET, OrderSide.BUY)
    assert (order.amount, order.filled) == (Decimal("0.00053"), Decimal("0.00053"))
    # 49.5285576 USDT for 0.00053 BTC over two fills; the fee is taken in BTC, summed over the fills.
    assert order.average_price.quantize(Decimal("0.01")) == Decimal("93450.11")
    assert (order.fee, order.fee_currency) == (Decimal("0.00000053"), "BTC")
    assert order.updated_at == datetime(2025, 1, 1, 11, 13, 20, 123000, tzinfo=UTC)


@responses.activate
def test_fetch_order_by_client_order_id_takes_the_fee_from_the_orders_trades():
    responses.get(ORDER_URL, json=recording("order_query_filled.json"))
    responses.get(MY_TRADES_URL, json=recording("my_trades_order_40172345112.json"))
    order = binance().fetch_order("sh1d42", "BTC/USDT")
    _, sent = query_of(responses.calls[0])
    assert sent["origClientOrderId"] == "sh1d42" and "orderId" not in sent
    assert (order.status, order.filled, order.exchange_order_id) == (
        OrderStatus.CLOSED,
        Decimal("0.00053"),
        "40172345112",
    )
    # Binance's order query carries no commission; its two trades do, in BTC: 0.00000030 + 0.00000023.
    assert (order.fee, order.fee_currency) == (Decimal("0.00000053"), "BTC")
    raw, sent = query_of(responses.calls[1])
    assert (sent["symbol"], sent["orderId"]) == ("BTCUSDT", "40172345112")
    unsigned = raw.rsplit("&signature=", 1)[0]
    assert sent["signature"] == hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        ({"json": recording("errors/maintenance_503.json"), "status": 503}, TemporaryExchangeError),
        ({"body": requests.ReadTimeout("read timed out")}, ExchangeTimeoutError),
    ],
)
@responses.activate
def test_a_lookup_whose_trades_cannot_be_read_raises_rather_than_drop_the_fee(failure, error_class):
    responses.get(ORDER_URL, json=recording("order_query_filled.json"))
    responses.get(MY_TRADES_URL, **failure)
    with pytest.raises(error_class) as caught:
        binance().fetch_order("sh1d42", "BTC/USDT")
    assert "look up order" in str(caught.value)
    assert "signature" not in str(caught.value) and API_KEY not in str(caught.value)


@responses.activate
def test_an_order_lookup_that_carries_its_fee_reads_no_trades():
    # The order with its fills, as Binance's FULL create answer gives them: ccxt finds the fee on the order.
    fills = recording("order_create_full_market_buy.json")["fills"]
    with_fills = {**recording("order_query_filled.json"), "fills": fills}
    responses.get(ORDER_URL, json=with_fills)
    order = binance().fetch_order("sh1d42", "BTC/USDT")
    assert (order.fee, order.fee_currency) == (Decimal("0.00000053"), "BTC")
    assert paths() == ["order"]


@responses.activate
def test_an_unfilled_order_or_an_exchange_without_order_trades_reads_no_trades():
    # An open order as Binance's order query answers it: the same fields its open-orders list carries.
    responses.get(ORDER_URL, json=recording("open_orders_BTCUSDT.json")[0])
    assert binance().fetch_order("sh1d41", "BTC/USDT").fee_currency is None
    responses.replace(responses.GET, ORDER_URL, json=recording("order_query_filled.json"))
    exchange = binance()
    exchange._client.has["fetchOrderTrades"] = False
    order = exchange.fetch_order("sh1d42", "BTC/USDT")
    # The fee stays unknown rather than guessed.
    assert (order.filled, order.fee, order.fee_currency) == (Decimal("0.00053"), Decimal(0), None)
    assert paths() == ["order", "order"]


@responses.activate
def test_fetch_order_is_none_when_binance_never_received_it():
    responses.get(ORDER_URL, json=recording("errors/order_does_not_exist_400.json"), status=400)
    assert binance().fetch_order("sh1d99", "BTC/USDT") is None


@responses.activate
def test_cancel_by_client_order_id_reports_our_id_not_the_cancel_requests():
    responses.delete(ORDER_URL, json=recording("order_cancel.json"))
    order = binance().cancel_order("sh1d41", "BTC/USDT")
    _, sent = query_of(responses.calls[0])
    assert sent["origClientOrderId"] == "sh1d41"
    assert order.client_order_id == "sh1d41"
    assert (order.status, order.order_type, order.filled) == (OrderStatus.CANCELED, OrderType.LIMIT, Decimal(0))
    assert paths() == ["order"]


@responses.activate
def test_a_cancelled_order_that_had_filled_in_part_has_the_fee_of_its_trades():
    partly_filled = {**recording("order_cancel.json"), "executedQty": "0.00003000", "cummulativeQuoteQty": "2.70000000"}
    responses.delete(ORDER_URL, json=partly_filled)
    [trade, _] = recording("my_trades_order_40172345112.json")
    trade = {**trade, "orderId": 40172298765, "price": "90000.00000000", "qty": "0.00003000", "quoteQty": "2.70000000"}
    responses.get(MY_TRADES_URL, json=[{**trade, "commission": "0.00000003", "isMaker": True}])
    order = binance().cancel_order("sh1d41", "BTC/USDT")
    assert (order.status, order.filled) == (OrderStatus.CANCELED, Decimal("0.00003"))
    assert (order.fee, order.fee_currency) == (Decimal("0.00000003"), "BTC")
    assert query_of(responses.calls[1])[1]["orderId"] == "40172298765"


@responses.activate
def test_open_orders():
    responses.get(re.compile(re.escape(f"{API}/openOrders") + r"\?.*"), json=recording("open_orders_BTCUSDT.json"))
    exchange = binance()
    (order,) = exchange.fetch_open_orders("BTC/USDT")
    assert (order.client_order_id, order.status, order.order_type) == ("sh1d41", OrderStatus.OPEN, OrderType.LIMIT)
    assert (order.amount, order.filled, order.average_price) == (Decimal("0.00006"), Decimal(0), None)
    # Without a symbol too: Binance charges more rate-limit weight, which the connector accepts.
    assert len(exchange.fetch_open_orders()) == 1
    assert "symbol" not in query_of(responses.calls[1])[1]


# --- errors ------------------------------------------------------------------------------------------------------

ERRORS = [
    ("errors/insufficient_balance_400.json", 400, InsufficientFundsError, "INSUFFICIENT_FUNDS"),
    ("errors/filter_failure_notional_400.json", 400, InvalidOrderError, "INVALID_ORDER"),
    ("errors/invalid_api_key_401.json", 401, AuthenticationError, "EXCHANGE_AUTH"),
    ("errors/too_many_requests_429.json", 429, RateLimitedError, "RATE_LIMITED"),
    ("errors/ip_banned_418.json", 418, RateLimitedError, "RATE_LIMITED"),
    ("errors/maintenance_503.json", 503, TemporaryExchangeError, "EXCHANGE_UNAVAILABLE"),
]


@pytest.mark.parametrize(("name", "status", "error_class", "code"), ERRORS)
@responses.activate
def test_binance_errors_on_create_map_to_our_classes(name, status, error_class, code):
    responses.post(f"{API}/order", json=recording(name), status=status)
    with pytest.raises(error_class) as caught:
        binance().create_order(MARKET_BUY)
    assert type(caught.value) is error_class and caught.value.code == code
    message = str(caught.value)
    assert message.startswith("binance ")
    assert recording(name)["msg"][:20] in message
    assert API_KEY not in message and SECRET not in message


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (ccxt.RequestTimeout, ExchangeTimeoutError),
        (ccxt.DDoSProtection, RateLimitedError),
        (ccxt.RateLimitExceeded, RateLimitedError),
        (ccxt.OnMaintenance, TemporaryExchangeError),
        (ccxt.ExchangeNotAvailable, TemporaryExchangeError),
        (ccxt.InvalidNonce, TemporaryExchangeError),
        (ccxt.OperationFailed, TemporaryExchangeError),
        (ccxt.InsufficientFunds, InsufficientFundsError),
        (ccxt.OrderNotFound, OrderNotFoundError),
        (ccxt.DuplicateOrderId, InvalidOrderError),
        (ccxt.InvalidOrder, InvalidOrderError),
        (ccxt.PermissionDenied, AuthenticationError),
        (ccxt.AccountSuspended, AuthenticationError),
        (ccxt.AuthenticationError, AuthenticationError),
        (ccxt.BadRequest, PermanentExchangeError),
        (ccxt.ExchangeError, PermanentExchangeError),
    ],
)
def test_every_ccxt_error_family_has_its_class(theirs, ours):
    error = translate_ccxt_error(
        theirs(f"kraken failed with key {API_KEY}"), "kraken", "fetch balances", secrets=[API_KEY]
    )
    assert type(error) is ours
    assert error.temporary == issubclass(ours, TemporaryExchangeError)
    assert str(error).startswith("kraken ") and "fetch balances" in str(error) and API_KEY not in str(error)


def test_a_bad_request_while_placing_an_order_is_an_invalid_order():
    error = translate_ccxt_error(
        ccxt.BadRequest("binance Filter failure: NOTIONAL"), "binance", "x", placing_order=True
    )
    assert type(error) is InvalidOrderError


@responses.activate
def test_network_failures_are_temporary_and_name_no_signature():
    responses.get(re.compile(re.escape(f"{API}/account") + r"\?.*"), body=requests.ConnectionError("reset"))
    responses.get(ORDER_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(TemporaryExchangeError, match="binance could not be reached") as down:
        binance().fetch_balances()
    with pytest.raises(ExchangeTimeoutError, match="binance did not answer in time") as slow:
        binance().fetch_order("sh1d42", "BTC/USDT")
    for error in (down.value, slow.value):
        assert "signature" not in str(error) and "api/v3" in str(error)
        assert error.__cause__ is None and error.__suppress_context__


@responses.activate
def test_credentials_never_reach_the_logs(caplog):
    responses.post(f"{API}/order", json=recording("errors/invalid_api_key_401.json"), status=401)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError):
        binance().create_order(MARKET_BUY)
    assert API_KEY not in caplog.text and SECRET not in caplog.text
    assert API_KEY not in repr(binance())


def test_missing_credentials_are_an_authentication_error_before_any_request():
    with pytest.raises(AuthenticationError, match="apiKey"):
        CcxtExchange("binance", markets=MARKETS).fetch_balances()


def test_an_unknown_exchange_or_sandbox_is_named():
    with pytest.raises(ValueError, match="ccxt has no exchange 'nosuchex'"):
        CcxtExchange("nosuchex")
    with pytest.raises(ValueError, match="kraken has no sandbox"):
        CcxtExchange("kraken", sandbox=True)


# --- exactly-once placement --------------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", [requests.ConnectionError("connection reset"), requests.ReadTimeout("timed out")])
@responses.activate
def test_a_lost_create_response_is_resolved_by_lookup_without_a_second_order(failure):
    responses.post(f"{API}/order", body=failure)
    responses.get(ORDER_URL, json=recording("order_query_filled.json"))
    responses.get(MY_TRADES_URL, json=recording("my_trades_order_40172345112.json"))
    sleeps = Sleeps()
    order = place_order_once(binance(), MARKET_BUY, sleep=sleeps)
    assert order.status == OrderStatus.CLOSED and order.client_order_id == "sh1d42"
    assert (order.fee, order.fee_currency) == (Decimal("0.00000053"), "BTC")
    assert len(calls("POST")) == 1
    assert paths() == ["order", "order", "myTrades"]
    assert query_of(calls("GET")[0])[1]["origClientOrderId"] == "sh1d42"
    assert sleeps == [0.5]


@responses.activate
def test_a_lookup_whose_trades_are_unreadable_is_looked_up_again_and_no_second_order_is_sent():
    responses.post(f"{API}/order", body=requests.ReadTimeout("timed out"))
    responses.get(ORDER_URL, json=recording("order_query_filled.json"))
    responses.get(MY_TRADES_URL, json=recording("errors/maintenance_503.json"), status=503)
    responses.get(MY_TRADES_URL, json=recording("my_trades_order_40172345112.json"))
    order = place_order_once(binance(), MARKET_BUY, sleep=Sleeps())
    assert (order.status, order.fee, order.fee_currency) == (OrderStatus.CLOSED, Decimal("0.00000053"), "BTC")
    assert [call.request.method for call in responses.calls] == ["POST", "GET", "GET", "GET", "GET"]
    assert paths() == ["order", "order", "myTrades", "order", "myTrades"]


@responses.activate
def test_a_create_that_never_arrived_is_sent_again_with_the_same_client_order_id():
    responses.post(f"{API}/order", body=requests.ReadTimeout("timed out"))
    responses.post(f"{API}/order", json=recording("order_create_full_market_buy.json"))
    responses.get(ORDER_URL, json=recording("errors/order_does_not_exist_400.json"), status=400)
    order = place_order_once(binance(), MARKET_BUY, sleep=Sleeps())
    assert order.status == OrderStatus.CLOSED
    posts = calls("POST")
    assert len(posts) == 2
    assert [query_of(post)[1]["newClientOrderId"] for post in posts] == ["sh1d42", "sh1d42"]
    assert [call.request.method for call in responses.calls] == ["POST", "GET", "POST"]


@responses.activate
def test_insufficient_funds_is_not_retried():
    responses.post(f"{API}/order", json=recording("errors/insufficient_balance_400.json"), status=400)
    sleeps = Sleeps()
    with pytest.raises(InsufficientFundsError) as caught:
        place_order_once(binance(), MARKET_BUY, sleep=sleeps)
    assert caught.value.code == "INSUFFICIENT_FUNDS"
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_rate_limited_then_success():
    responses.post(f"{API}/order", json=recording("errors/too_many_requests_429.json"), status=429)
    responses.post(f"{API}/order", json=recording("order_create_full_market_buy.json"))
    responses.get(ORDER_URL, json=recording("errors/order_does_not_exist_400.json"), status=400)
    order = place_order_once(binance(), MARKET_BUY, sleep=Sleeps())
    assert order.exchange_order_id == "40172345112"
    assert [call.request.method for call in responses.calls] == ["POST", "GET", "POST"]


@responses.activate
def test_a_failing_lookup_is_retried_and_never_followed_by_a_blind_create():
    responses.post(f"{API}/order", body=requests.ReadTimeout("timed out"))
    responses.get(ORDER_URL, json=recording("errors/maintenance_503.json"), status=503)
    responses.get(ORDER_URL, json=recording("order_query_filled.json"))
    responses.get(MY_TRADES_URL, json=recording("my_trades_order_40172345112.json"))
    sleeps = Sleeps()
    order = place_order_once(binance(), MARKET_BUY, sleep=sleeps)
    assert order.status == OrderStatus.CLOSED
    assert [call.request.method for call in responses.calls] == ["POST", "GET", "GET", "GET"]
    assert sleeps == [0.5, 1.0]


@responses.activate
def test_when_attempts_run_out_the_outcome_is_reported_unknown_not_temporary():
    responses.post(f"{API}/order", body=requests.ReadTimeout("timed out"))
    responses.get(ORDER_URL, body=requests.ConnectionError("down"))
    with pytest.raises(OrderOutcomeUnknownError, match="sh1d42") as caught:
        place_order_once(binance(), MARKET_BUY, max_attempts=3, sleep=Sleeps())
    assert not caught.value.temporary and caught.value.code == "ORDER_OUTCOME_UNKNOWN"
    assert len(calls("POST")) == 1 and len(calls("GET")) == 2


@responses.activate
def test_a_permanent_lookup_failure_leaves_the_outcome_unknown():
    responses.post(f"{API}/order", body=requests.ReadTimeout("timed out"))
    responses.get(ORDER_URL, json=recording("errors/invalid_api_key_401.json"), status=401)
    with pytest.raises(OrderOutcomeUnknownError, match="lookup failed"):
        place_order_once(binance(), MARKET_BUY, sleep=Sleeps())
    assert len(calls("POST")) == 1


@responses.activate
def test_reads_are_retried_on_temporary_errors_only():
    account = re.compile(re.escape(f"{API}/account") + r"\?.*")
    responses.get(account, json=recording("errors/maintenance_503.json"), status=503)
    responses.get(account, json=recording("account.json"))
    sleeps = Sleeps()
    exchange = binance()
    assert "USDT" in retry_temporary(exchange.fetch_balances, sleep=sleeps)
    assert sleeps == [0.5]

    responses.get(
        re.compile(re.escape(f"{API}/openOrders") + r"\?.*"),
        json=recording("errors/invalid_api_key_401.json"),
        status=401,
    )
    with pytest.raises(AuthenticationError):
        retry_temporary(binance().fetch_open_orders, sleep=sleeps)
    assert sleeps == [0.5]


@responses.activate
def test_an_invalid_key_after_a_successful_call_is_read_as_a_temporary_ban():
    """ccxt's Binance workaround: -2015 on a key that already worked is how Binance reports a temporary IP ban."""
    responses.get(re.compile(re.escape(f"{API}/account") + r"\?.*"), json=recording("account.json"))
    responses.get(ORDER_URL, json=recording("errors/invalid_api_key_401.json"), status=401)
    exchange = binance()
    exchange.fetch_balances()
    with pytest.raises(RateLimitedError):
        exchange.fetch_order("sh1d42", "BTC/USDT")


def test_the_rate_limiter_is_always_on():
    assert CcxtExchange("binance", markets=MARKETS, options={"enableRateLimit": False})._client.enableRateLimit


def test_retry_gives_up_after_max_attempts():
    sleeps = Sleeps()

    def down():
        raise RateLimitedError("binance is rate limiting us")

    with pytest.raises(RateLimitedError):
        retry_temporary(down, max_attempts=3, base_delay=1, sleep=sleeps)
    assert sleeps == [1, 2]


def test_client_order_ids_are_deterministic_short_and_accepted_by_binance():
    binance_rule = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
    assert client_order_id_for(42, 1) == client_order_id_for(42, 1) == "sh1d42"
    assert client_order_id_for(42, 1, "r2") == "sh1d42tr2"
    ids = {client_order_id_for(d, a, t) for d in (1, 12, 123) for a in (1, 12, 123) for t in ("", "2")}
    assert len(ids) == 18  # distinct inputs never share an id
    longest = client_order_id_for(10**10, 10**8, "zzzzzzzz")
    assert binance_rule.match(longest) and len(longest) == 32
    for bad in [(-1, 1, ""), (1, 1, "no-dash"), (10**11, 10**8, "zzzzzzzz")]:
        with pytest.raises(ValueError):
            client_order_id_for(*bad)


# --- other exchanges ---------------------------------------------------------------------------------------------


def tiny_market(market_id, symbol, amount_step, price_step, min_cost, fee):
    base, quote = symbol.split("/")
    return {
        symbol: {
            "id": market_id,
            "symbol": symbol,
            "base": base,
            "quote": quote,
            "baseId": base,
            "quoteId": quote,
            "type": "spot",
            "spot": True,
            "active": True,
            "taker": fee,
            "maker": fee,
            "precision": {"amount": amount_step, "price": price_step},
            "limits": {"amount": {"min": amount_step}, "cost": {"min": min_cost}, "price": {}},
        }
    }


@pytest.mark.parametrize(
    ("exchange_id", "market_id", "price_step", "min_cost", "fee"),
    [("coinbase", "BTC-USD", 0.01, 1, 0.006), ("kraken", "XXBTZUSD", 0.1, 0.5, 0.004)],
)
@responses.activate
def test_coinbase_and_kraken_are_supported_for_market_rules(exchange_id, market_id, price_step, min_cost, fee):
    """Any ccxt id constructs; rules come from its markets."""
    markets = tiny_market(market_id, "BTC/USD", 1e-08, price_step, min_cost, fee)
    exchange = CcxtExchange(exchange_id, api_key="key", secret="c2VjcmV0", markets=markets)
    rules = exchange.market_rules("BTC/USD")
    assert (rules.amount_step, rules.price_step, rules.min_notional) == (
        Decimal("1E-8"),
        Decimal(str(price_step)),
        Decimal(str(min_cost)),
    )
    assert rules.taker_fee == Decimal(str(fee))
    assert len(responses.calls) == 0


def test_an_exchange_whose_order_lists_are_unchecked_refuses_lookup_by_client_order_id():
    exchange = CcxtExchange(
        "okx",
        api_key="key",
        secret="s",
        password="p",
        markets=tiny_market("BTC-USDT", "BTC/USDT", 1e-08, 0.1, 1, 0.001),
    )
    with responses.RequestsMock(), pytest.raises(PermanentExchangeError, match="by client order id is not supported"):
        exchange.fetch_order("sh1d42", "BTC/USDT")


# --- order lookup where ccxt cannot address our id: Coinbase and Kraken list their orders -------------------------

COINBASE_ORDERS = "https://api.coinbase.com/api/v3/brokerage/orders/historical/batch"
KRAKEN_PRIVATE = "https://api.kraken.com/0/private"


def other_recording(exchange_id, name):
    return json.loads((PROJECT_ROOT / "tests" / "recordings" / exchange_id / name).read_text())


def coinbase():
    markets = tiny_market("BTC-USD", "BTC/USD", 1e-08, 0.01, 1, 0.006)
    return CcxtExchange("coinbase", api_key="key", secret="c2VjcmV0", markets=markets, options={"rateLimit": 0})


def kraken():
    markets = tiny_market("XXBTZUSD", "BTC/USD", 1e-08, 0.1, 0.5, 0.004)
    # Kraken's orders name the pair by its altname; ccxt learns altnames when it loads markets.
    markets["BTC/USD"]["info"] = {"altname": "XBTUSD"}
    exchange = CcxtExchange("kraken", api_key="key", secret="c2VjcmV0", markets=markets, options={"rateLimit": 0})
    exchange._client.options["marketsByAltname"] = {"XBTUSD": exchange._client.markets["BTC/USD"]}
    return exchange


def coinbase_lists(open_orders, all_orders, status=200):
    """The open-orders request (order_status=OPEN) and the every-status request, told apart by their query."""
    open_query = responses.matchers.query_param_matcher({"order_status": "OPEN"}, strict_match=False)
    responses.get(COINBASE_ORDERS, json=open_orders, status=status, match=[open_query])
    responses.get(COINBASE_ORDERS, json=all_orders, status=status)


def kraken_form(call):
    body = call.request.body
    return {name: values[0] for name, values in parse_qs(body.decode() if isinstance(body, bytes) else body).items()}


@responses.activate
def test_coinbase_finds_an_open_order_by_client_order_id_among_its_open_orders():
    coinbase_lists(other_recording("coinbase", "orders_open.json"), {})
    order = coinbase().fetch_order("sh1d41", "BTC/USD")
    assert (order.client_order_id, order.exchange_order_id) == ("sh1d41", "7c1f3a2e-9d84-4b6e-8f0a-3e5d2c1b4a90")
    assert (order.status, order.order_type, order.amount, order.filled) == (
        OrderStatus.OPEN,
        OrderType.LIMIT,
        Decimal("0.00006"),
        Decimal(0),
    )
    (call,) = responses.calls
    sent = parse_qs(urlsplit(call.request.url).query)
    assert sent["product_id"] == ["BTC-USD"] and sent["order_status"] == ["OPEN"] and sent["limit"] == ["100"]


@responses.activate
def test_coinbase_finds_a_filled_order_in_its_order_history():
    coinbase_lists(other_recording("coinbase", "orders_open_none.json"), other_recording("coinbase", "orders_all.json"))
    order = coinbase().fetch_order("sh1d42", "BTC/USD")
    assert (order.status, order.side, order.filled) == (OrderStatus.CLOSED, OrderSide.BUY, Decimal("0.00053"))
    assert order.average_price == Decimal("93450.11") and order.exchange_order_id.startswith("0d2e8c94")
    history = urlsplit(responses.calls[1].request.url)
    assert "order_status" not in parse_qs(history.query)


@responses.activate
def test_coinbase_answers_none_only_when_both_whole_lists_lack_the_order():
    coinbase_lists(
        other_recording("coinbase", "orders_open_none.json"),
        other_recording("coinbase", "orders_all_without_ours.json"),
    )
    assert coinbase().fetch_order("sh1d42", "BTC/USD") is None
    assert len(responses.calls) == 2


@responses.activate
def test_a_full_page_without_the_order_is_not_an_absence():
    someone_elses = other_recording("coinbase", "orders_all_without_ours.json")["orders"][0]
    page = {"orders": [someone_elses] * 100, "sequence": "0", "has_next": True, "cursor": "789100"}
    coinbase_lists(other_recording("coinbase", "orders_open_none.json"), page)
    with pytest.raises(PermanentExchangeError, match="more than 100 orders listed"):
        coinbase().fetch_order("sh1d42", "BTC/USD")


@responses.activate
def test_kraken_finds_an_open_order_asking_kraken_for_our_id():
    responses.post(f"{KRAKEN_PRIVATE}/OpenOrders", json=other_recording("kraken", "open_orders.json"))
    order = kraken().fetch_order("sh1d41", "BTC/USD")
    assert (order.exchange_order_id, order.status, order.order_type) == (
        "OQCLML-BW3P3-BUCMWZ",
        OrderStatus.OPEN,
        OrderType.LIMIT,
    )
    assert (order.side, order.amount, order.filled) == (OrderSide.BUY, Decimal("0.00006"), Decimal(0))
    (call,) = responses.calls
    assert kraken_form(call)["cl_ord_id"] == "sh1d41" and call.request.headers["API-Key"] == "key"


@responses.activate
def test_kraken_finds_a_filled_order_among_its_closed_orders():
    responses.post(f"{KRAKEN_PRIVATE}/OpenOrders", json=other_recording("kraken", "open_orders_none.json"))
    responses.post(f"{KRAKEN_PRIVATE}/ClosedOrders", json=other_recording("kraken", "closed_orders.json"))
    order = kraken().fetch_order("sh1d42", "BTC/USD")
    assert (order.exchange_order_id, order.status, order.filled) == (
        "OB5VMB-B4U2U-DK2WRW",
        OrderStatus.CLOSED,
        Decimal("0.00053"),
    )
    assert (order.fee, order.fee_currency) == (Decimal("0.19811"), "USD")
    assert [kraken_form(call)["cl_ord_id"] for call in responses.calls] == ["sh1d42", "sh1d42"]


@responses.activate
def test_kraken_answers_none_when_neither_list_has_the_order():
    responses.post(f"{KRAKEN_PRIVATE}/OpenOrders", json=other_recording("kraken", "open_orders_none.json"))
    responses.post(f"{KRAKEN_PRIVATE}/ClosedOrders", json=other_recording("kraken", "closed_orders_none.json"))
    assert kraken().fetch_order("sh1d99", "BTC/USD") is None


@responses.activate
def test_kraken_ignores_orders_listed_under_another_client_order_id():
    """Should Kraken ever ignore the cl_ord_id filter, the match on the parsed clientOrderId still decides."""
    responses.post(f"{KRAKEN_PRIVATE}/OpenOrders", json=other_recording("kraken", "open_orders.json"))
    responses.post(f"{KRAKEN_PRIVATE}/ClosedOrders", json=other_recording("kraken", "closed_orders.json"))
    assert kraken().fetch_order("sh1d99", "BTC/USD") is None


@pytest.mark.parametrize("make", [coinbase, kraken])
def test_an_exchange_that_cannot_list_past_orders_refuses_rather_than_guess(make):
    exchange = make()
    for name in ("fetchOrders", "fetchClosedOrders"):
        exchange._client.has[name] = False
    with responses.RequestsMock():  # no request at all
        with pytest.raises(PermanentExchangeError, match="cannot list past orders"):
            exchange.fetch_order("sh1d42", "BTC/USD")
        with pytest.raises(PermanentExchangeError, match="cannot list past orders"):
            exchange.cancel_order("sh1d42", "BTC/USD")


@responses.activate
def test_a_failing_listing_raises_and_place_order_once_sends_no_second_order():
    responses.post(f"{KRAKEN_PRIVATE}/AddOrder", body=requests.ReadTimeout("timed out"))
    responses.post(f"{KRAKEN_PRIVATE}/OpenOrders", json=other_recording("kraken", "open_orders_none.json"))
    responses.post(f"{KRAKEN_PRIVATE}/ClosedOrders", json=other_recording("kraken", "error_invalid_key.json"))
    request = OrderRequest("BTC/USD", OrderSide.BUY, OrderType.MARKET, Decimal("0.00053"), "sh1d42")
    with pytest.raises(OrderOutcomeUnknownError, match="lookup failed"):
        place_order_once(kraken(), request, sleep=Sleeps())
    assert [call.request.url.rsplit("/", 1)[1] for call in responses.calls] == [
        "AddOrder",
        "OpenOrders",
        "ClosedOrders",
    ]
    assert kraken_form(responses.calls[0])["cl_ord_id"] == "sh1d42"


@responses.activate
def test_coinbase_listing_refused_is_raised_not_none():
    responses.get(COINBASE_ORDERS, json=other_recording("coinbase", "error_unauthorized_401.json"), status=401)
    with pytest.raises(AuthenticationError):
        coinbase().fetch_order("sh1d42", "BTC/USD")


@responses.activate
def test_a_lost_kraken_create_is_found_in_the_closed_orders_without_a_second_order():
    responses.post(f"{KRAKEN_PRIVATE}/AddOrder", body=requests.ConnectionError("connection reset"))
    responses.post(f"{KRAKEN_PRIVATE}/OpenOrders", json=other_recording("kraken", "open_orders_none.json"))
    responses.post(f"{KRAKEN_PRIVATE}/ClosedOrders", json=other_recording("kraken", "closed_orders.json"))
    request = OrderRequest("BTC/USD", OrderSide.BUY, OrderType.MARKET, Decimal("0.00053"), "sh1d42")
    order = place_order_once(kraken(), request, sleep=Sleeps())
    assert order.status == OrderStatus.CLOSED and order.exchange_order_id == "OB5VMB-B4U2U-DK2WRW"
    assert len(calls("POST")) == 3


@responses.activate
def test_coinbase_cancel_finds_the_order_then_cancels_it_by_coinbases_id():
    coinbase_lists(other_recording("coinbase", "orders_open.json"), {})
    responses.post(
        "https://api.coinbase.com/api/v3/brokerage/orders/batch_cancel",
        json=other_recording("coinbase", "batch_cancel.json"),
    )
    order_id = "7c1f3a2e-9d84-4b6e-8f0a-3e5d2c1b4a90"
    responses.get(
        f"https://api.coinbase.com/api/v3/brokerage/orders/historical/{order_id}",
        json=other_recording("coinbase", "order_cancelled.json"),
    )
    order = coinbase().cancel_order("sh1d41", "BTC/USD")
    assert (order.client_order_id, order.exchange_order_id, order.status) == ("sh1d41", order_id, OrderStatus.CANCELED)
    assert json.loads(responses.calls[1].request.body) == {"order_ids": [order_id]}


@responses.activate
def test_kraken_cancel_by_its_txid_and_a_missing_order_is_not_found():
    responses.post(f"{KRAKEN_PRIVATE}/OpenOrders", json=other_recording("kraken", "open_orders.json"))
    responses.post(f"{KRAKEN_PRIVATE}/CancelOrder", json=other_recording("kraken", "cancel_order.json"))
    responses.post(f"{KRAKEN_PRIVATE}/QueryOrders", json=other_recording("kraken", "query_orders_cancelled.json"))
    order = kraken().cancel_order("sh1d41", "BTC/USD")
    assert (order.exchange_order_id, order.status) == ("OQCLML-BW3P3-BUCMWZ", OrderStatus.CANCELED)
    assert kraken_form(responses.calls[1])["txid"] == "OQCLML-BW3P3-BUCMWZ"

    responses.calls.reset()
    responses.replace(
        responses.POST, f"{KRAKEN_PRIVATE}/OpenOrders", json=other_recording("kraken", "open_orders_none.json")
    )
    responses.post(f"{KRAKEN_PRIVATE}/ClosedOrders", json=other_recording("kraken", "closed_orders_none.json"))
    with pytest.raises(OrderNotFoundError, match="no order sh1d99"):
        kraken().cancel_order("sh1d99", "BTC/USD")
    assert "CancelOrder" not in [call.request.url.rsplit("/", 1)[1] for call in responses.calls]


# --- an exchange base URL per account ----------------------------------------------------------------------------


@responses.activate
def test_a_base_url_sends_every_request_to_that_host_with_ccxts_paths():
    responses.get(
        re.compile(re.escape("https://api-gcp.binance.com/api/v3/account") + r"\?.*"), json=recording("account.json")
    )
    responses.post("https://api-gcp.binance.com/api/v3/order", json=recording("order_create_full_market_buy.json"))
    exchange = binance(base_url="https://api-gcp.binance.com/")
    assert "USDT" in exchange.fetch_balances()
    assert exchange.create_order(MARKET_BUY).exchange_order_id == "40172345112"
    assert query_of(responses.calls[1])[1]["newClientOrderId"] == "sh1d42"
    assert all(url.startswith("https://api-gcp.binance.com/") for url in exchange._client.urls["api"].values())


@responses.activate
def test_a_base_url_applies_over_the_sandbox_and_to_one_url_exchanges():
    responses.get("http://127.0.0.1:8901/api/v3/ticker/24hr?symbol=BTCUSDT", json=recording("ticker_24hr_BTCUSDT.json"))
    assert binance(sandbox=True, base_url="http://127.0.0.1:8901").fetch_ticker("BTC/USDT").last == Decimal("93450.12")
    exchange = CcxtExchange("kraken", base_url="https://kraken-proxy.example:8443")
    assert exchange._client.urls["api"]["private"] == "https://kraken-proxy.example:8443"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://api.binance.com", "must use https"),
        ("https://user:hunter2@api.binance.com", "must not carry credentials"),
        ("https://api.binance.com/api/v3", "without a path"),
        ("ftp://api.binance.com", "must be an https:// URL"),
        ("https://api.binance.com:port", "is not a URL"),
    ],
)
def test_an_unacceptable_base_url_is_refused(url, reason):
    with pytest.raises(ValueError, match=reason) as caught:
        binance(base_url=url)
    assert "hunter2" not in str(caught.value)
