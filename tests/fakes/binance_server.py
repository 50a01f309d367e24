"""A fake Binance spot REST API in its own process, speaking Binance's wire format for what ccxt sends: signed
requests (HMAC-SHA256 over the query or form body, X-MBX-APIKEY), `POST /api/v3/order` keyed by newClientOrderId,
`GET /api/v3/order?origClientOrderId=` (-2013 when unknown, and like Binance's without the commission),
`GET /api/v3/myTrades?symbol=[&orderId=]` (the trades of the orders it holds, with their commission),
`GET /api/v3/account`, `GET /api/v3/openOrders`, and `GET /api/v3/exchangeInfo` from
tests/recordings/binance/exchangeInfo_spot.json.

Market orders fill at once at `FILL_PRICE`, the 0.1% fee taken in the base asset, as Binance does without BNB.
`GET /fake/orders` lists every order the exchange holds, for tests to count.

`GET /api/v3/klines?symbol=BTCUSDT&interval=1h&limit=N` (public) serves the bundled real BTC/USDT 1h candles moved
in time so that the latest bar closed at the moment of the request is `PRESENT_BAR` (2024-01-12 16:00, where
rules:rsi_reversion buys), followed by the still-forming bar, as Binance returns it: a scheduler running on the
wall clock finds that BUY on whatever hour the test runs.

Run: `python -m tests.fakes.binance_server CONTROL_DIR API_KEY SECRET [--hold-first-order]`. It writes its port to
CONTROL_DIR/port once listening. With --hold-first-order the first order is recorded (and filled), then
CONTROL_DIR/order-held is written and the response is never sent: the client times out or is killed meanwhile,
as when a connection dies between an exchange accepting an order and the caller hearing of it.
"""

import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXCHANGE_INFO = PROJECT_ROOT / "tests" / "recordings" / "binance" / "exchangeInfo_spot.json"
CANDLES = PROJECT_ROOT / "data" / "candles" / "binance_BTCUSDT_1h_2024-01_2024-09.csv"
PRESENT_BAR_MS = 1705075200000  # 2024-01-12 16:00 UTC, open time
HOUR_MS = 3_600_000
FILL_PRICE = Decimal("43630.00")
FEE_RATE = Decimal("0.001")
SYMBOLS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}


def _eight(value: Decimal) -> str:
    return f"{value:.8f}"


class FakeBinance:
    """The exchange's state; every change under one lock (the server answers requests on several threads)."""

    def __init__(self, control_dir: Path, api_key: str, secret: str, hold_first_order: bool) -> None:
        self.control_dir = control_dir
        self.api_key = api_key
        self.secret = secret.encode()
        self.hold_next_order = hold_first_order
        self.lock = threading.Lock()
        self.balances = {"USDT": Decimal(100), "BTC": Decimal(0), "ETH": Decimal(0)}
        self.orders: dict[str, dict[str, Any]] = {}
        self.next_order_id = 40172345112

    def create(self, params: dict[str, str]) -> tuple[int, dict[str, Any], bool]:
        """(status, body, hold the response)."""
        symbol, client_order_id = params.get("symbol", ""), params.get("newClientOrderId", "")
        if symbol not in SYMBOLS or params.get("type") != "MARKET" or not client_order_id:
            return 400, {"code": -1013, "msg": "Invalid order (the fake fills MARKET orders with a client id)."}, False
        base, quote = SYMBOLS[symbol]
        quantity = Decimal(params["quantity"])
        cost = quantity * FILL_PRICE
        with self.lock:
            if client_order_id in self.orders:
                return 400, {"code": -2010, "msg": "Duplicate order sent."}, False
            if params["side"] == "BUY":
                if self.balances[quote] < cost:
                    return 400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}, False
                fee = quantity * FEE_RATE
                self.balances[quote] -= cost
                self.balances[base] += quantity - fee
                commission_asset = base
            else:
                if self.balances[base] < quantity:
                    return 400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}, False
                fee = cost * FEE_RATE
                self.balances[base] -= quantity
                self.balances[quote] += cost - fee
                commission_asset = quote
            now = int(time.time() * 1000)
            order = {
                "symbol": symbol,
                "orderId": self.next_order_id,
                "orderListId": -1,
                "clientOrderId": client_order_id,
                "transactTime": now,
                "price": "0.00000000",
                "origQty": _eight(quantity),
                "executedQty": _eight(quantity),
                "cummulativeQuoteQty": _eight(cost),
                "status": "FILLED",
                "timeInForce": "GTC",
                "type": "MARKET",
                "side": params["side"],
                "workingTime": now,
                "selfTradePreventionMode": "EXPIRE_MAKER",
                "fills": [
                    {
                        "price": _eight(FILL_PRICE),
                        "qty": _eight(quantity),
                        "commission": _eight(fee),
                        "commissionAsset": commission_asset,
                        "tradeId": self.next_order_id,
                    }
                ],
            }
            self.next_order_id += 1
            self.orders[client_order_id] = order
            hold, self.hold_next_order = self.hold_next_order, False
        return 200, order, hold

    def query(self, client_order_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            order = self.orders.get(client_order_id)
        if order is None:
            return 400, {"code": -2013, "msg": "Order does not exist."}
        queried = {key: value for key, value in order.items() if key not in ("fills", "transactTime")}
        return 200, {**queried, "time": order["transactTime"], "updateTime": order["transactTime"], "isWorking": True}

    def my_trades(self, params: dict[str, str]) -> tuple[int, Any]:
        """The trades of the symbol's orders (of one order with `orderId`), in Binance's myTrades format."""
        symbol = params.get("symbol", "")
        if symbol not in SYMBOLS:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        with self.lock:
            orders = [order for order in self.orders.values() if order["symbol"] == symbol]
        return 200, [
            {
                "symbol": symbol,
                "id": fill["tradeId"],
                "orderId": order["orderId"],
                "orderListId": -1,
                "price": fill["price"],
                "qty": fill["qty"],
                "quoteQty": _eight(Decimal(fill["price"]) * Decimal(fill["qty"])),
                "commission": fill["commission"],
                "commissionAsset": fill["commissionAsset"],
                "time": order["transactTime"],
                "isBuyer": order["side"] == "BUY",
                "isMaker": False,
                "isBestMatch": True,
            }
            for order in orders
            if params.get("orderId") in (None, str(order["orderId"]))
            for fill in order["fills"]
        ]

    def account(self) -> dict[str, Any]:
        with self.lock:
            balances = [
                {"asset": asset, "free": _eight(amount), "locked": "0.00000000"}
                for asset, amount in self.balances.items()
            ]
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "updateTime": int(time.time() * 1000),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
        }


def klines(params: dict[str, str], now_ms: int) -> tuple[int, Any]:
    """Binance's kline rows (open time, OHLCV as strings, close time, ...) ending with the bar forming at `now_ms`."""
    if (params.get("symbol"), params.get("interval")) != ("BTCUSDT", "1h"):
        return 400, {"code": -1121, "msg": "the fake serves BTCUSDT 1h klines only"}
    limit = min(int(params.get("limit") or 500), 1000)
    forming_open = now_ms // HOUR_MS * HOUR_MS
    shift = forming_open - HOUR_MS - PRESENT_BAR_MS
    rows = []
    for line in CANDLES.read_text().splitlines()[1:]:
        opened, *values = line.split(",")
        if int(opened) > PRESENT_BAR_MS + HOUR_MS:
            break
        start = int(opened) + shift
        rows.append([start, *values, start + HOUR_MS - 1, "0", 0, "0", "0", "0"])
    return 200, rows[-limit:]


def _write_whole(path: Path, text: str) -> None:
    # Written aside, then renamed: a test polling for the file never reads half of it.
    path.with_suffix(".tmp").write_text(text)
    path.with_suffix(".tmp").rename(path)


def handler_for(exchange: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else url.query
            params = dict(parse_qsl(raw))
            if url.path == "/fake/orders":
                with exchange.lock:
                    return self._send(200, list(exchange.orders.values()))
            if url.path == "/api/v3/klines":
                return self._send(*klines(params, int(time.time() * 1000)))
            if url.path == "/api/v3/exchangeInfo":
                return self._send(200, json.loads(EXCHANGE_INFO.read_text()))
            private = ("/api/v3/order", "/api/v3/myTrades", "/api/v3/account", "/api/v3/openOrders")
            if url.path in private and not self._signed(raw):
                return self._send(401, {"code": -1022, "msg": "Signature for this request is not valid."})
            if (method, url.path) == ("POST", "/api/v3/order"):
                status, body, hold = exchange.create(params)
                if hold:
                    _write_whole(exchange.control_dir / "order-held", body["clientOrderId"])
                    # Never answered: the caller is killed (or times out) with the order live on the exchange.
                    threading.Event().wait()
                return self._send(status, body)
            if (method, url.path) == ("GET", "/api/v3/order"):
                return self._send(*exchange.query(params.get("origClientOrderId", "")))
            if (method, url.path) == ("GET", "/api/v3/myTrades"):
                return self._send(*exchange.my_trades(params))
            if (method, url.path) == ("GET", "/api/v3/account"):
                return self._send(200, exchange.account())
            if (method, url.path) == ("GET", "/api/v3/openOrders"):
                return self._send(200, [])
            # Anything else ccxt asks for is named on stderr, so a test failure says what is missing here.
            print(f"fake binance: unhandled {method} {url.path}", file=sys.stderr, flush=True)
            return self._send(404, {"code": -1, "msg": f"the fake has no {method} {url.path}"})

        def _signed(self, raw: str) -> bool:
            unsigned, _, signature = raw.rpartition("&signature=")
            expected = hmac.new(exchange.secret, unsigned.encode(), hashlib.sha256).hexdigest()
            key_ok = hmac.compare_digest(self.headers.get("X-MBX-APIKEY", ""), exchange.api_key)
            return key_ok and hmac.compare_digest(signature, expected)

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"fake binance: {format % args}", file=sys.stderr, flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("control_dir", type=Path)
    parser.add_argument("api_key")
    parser.add_argument("secret")
    parser.add_argument("--hold-first-order", action="store_true")
    args = parser.parse_args()
    exchange = FakeBinance(args.control_dir, args.api_key, args.secret, args.hold_first_order)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(exchange))
    server.daemon_threads = True
    _write_whole(args.control_dir / "port", str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
