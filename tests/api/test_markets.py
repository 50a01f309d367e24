"""/api/v1/markets: an exchange's symbols with their trading rules; the candle store's coverage."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from app.extensions import db
from app.models import Candle
from app.persistence.markets import store_catalog
from tests import factories
from tests.api.conftest import ApiClient, issue
from tests.factories import PROJECT_ROOT

SNAPSHOT = PROJECT_ROOT / "data" / "markets" / "binance_markets_snapshot.json"


def test_markets_come_from_the_bundled_snapshot_with_their_rules(caller):
    response = caller.get("/api/v1/markets")
    assert response.status_code == 200
    body = response.json
    assert body["exchange"] == "binance" and body["source"] == "bundled"
    assert body["snapshot_date"] == "2025-01-01" and body["fetched_at"] is None
    assert [m["symbol"] for m in body["markets"]] == ["BTC/USDT", "ETH/USDT"]
    assert body["markets"][0] == {
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "price_tick": "0.01",
        "amount_step": "0.00001",
        "min_amount": "0.00001",
        "min_notional": "5",
        "taker_fee": "0.001",
        "maker_fee": "0.001",
    }
    assert caller.get("/api/v1/markets?exchange=binance&base=eth").json["markets"][0]["symbol"] == "ETH/USDT"
    assert caller.get("/api/v1/markets?quote=BTC").json["markets"] == []


def test_markets_fetched_from_the_exchange_replace_the_snapshot(caller):
    markets = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    sol = {**markets["BTC/USDT"], "symbol": "SOL/USDT", "base": "SOL", "id": "SOLUSDT"}
    sol["precision"] = {**sol["precision"], "price": 0.001, "amount": 0.1}
    fetched = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    store_catalog(db.session, "binance", {"SOL/USDT": sol, "BTC/USDT": markets["BTC/USDT"]}, fetched)
    db.session.commit()
    body = caller.get("/api/v1/markets?exchange=binance").json
    assert body["source"] == "fetched" and body["fetched_at"] == fetched.isoformat()
    assert [m["symbol"] for m in body["markets"]] == ["BTC/USDT", "SOL/USDT"]
    assert body["markets"][1]["price_tick"] == "0.001" and body["markets"][1]["amount_step"] == "0.1"


@pytest.mark.parametrize(
    ("query", "field"),
    [("exchange=nowhere", "exchange"), ("exchange=" + "x" * 40, "exchange"), ("quote=", "quote"), ("page=2", "page")],
)
def test_bad_market_queries_are_422_naming_the_field(caller, query, field):
    response = caller.get(f"/api/v1/markets?{query}")
    assert response.status_code == 422
    assert response.json["error"]["code"] == "INVALID_INPUT" and response.json["error"]["details"]["field"] == field


def test_coverage_gives_each_stored_series_span_and_missing_bars(caller):
    factories.candles(db.session)
    factories.candles(db.session, "binance_ETHUSDT_1d_2024-01_2024-09.csv")
    db.session.commit()
    btc = sorted(c.open_time for c in factories._read(factories.BTC_2024_1H, "1h"))
    # Take six hours out of the middle: a gap the coverage has to count.
    hole_start = btc[1000]
    db.session.execute(
        delete(Candle).where(
            Candle.symbol == "BTC/USDT",
            Candle.open_time >= hole_start,
            Candle.open_time < hole_start + timedelta(hours=6),
        )
    )
    db.session.commit()
    already_missing = int((btc[-1] - btc[0]) / timedelta(hours=1)) + 1 - len(btc)

    response = caller.get("/api/v1/markets/coverage")
    assert response.status_code == 200
    series = response.json["series"]
    assert [(s["symbol"], s["timeframe"]) for s in series] == [("BTC/USDT", "1h"), ("ETH/USDT", "1d")]
    first = series[0]
    assert first["exchange"] == "binance"
    assert first["first_bar"] == btc[0].isoformat() and first["last_bar"] == btc[-1].isoformat()
    assert first["last_close"] == (btc[-1] + timedelta(hours=1)).isoformat()
    assert first["bars"] == len(btc) - 6
    assert first["missing_bars"] == already_missing + 6

    only_eth = caller.get("/api/v1/markets/coverage?symbol=ETH/USDT&timeframe=1d").json["series"]
    assert [s["symbol"] for s in only_eth] == ["ETH/USDT"]
    assert caller.get("/api/v1/markets/coverage?exchange=kraken").json["series"] == []
    response = caller.get("/api/v1/markets/coverage?timeframe=" + "1" * 9)
    assert response.status_code == 422 and response.json["error"]["details"]["field"] == "timeframe"


def test_markets_need_a_key_with_the_read_scope(api_app):
    user = factories.user(db.session)
    trader = ApiClient(api_app, issue(user, ["trade"]))
    anonymous = ApiClient(api_app, None)
    for path in ("/api/v1/markets", "/api/v1/markets/coverage"):
        assert anonymous.get(path).status_code == 401
        response = trader.get(path)
        assert response.status_code == 403 and response.json["error"]["details"]["required_scope"] == "read"
    assert ApiClient(api_app, issue(user, ["read"])).get("/api/v1/markets/coverage").status_code == 200
