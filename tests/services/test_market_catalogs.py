"""Markets refreshed from an exchange through ccxt (against a recorded Binance exchangeInfo) replace the bundled
snapshot; an unknown symbol's message says whether the markets may be out of date or the exchange lacks it."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
import responses

from app import current_settings
from app.errors import InvalidInputError
from app.extensions import db
from app.services import markets
from app.services.markets import MARKETS_FRESH_FOR, MarketDataUnavailableError
from tests.conftest import PROJECT_ROOT

EXCHANGE_INFO_URL = "https://api.binance.com/api/v3/exchangeInfo"
EXCHANGE_INFO = json.loads((PROJECT_ROOT / "tests" / "recordings" / "binance" / "exchangeInfo_spot.json").read_text())
FETCHED_AT = datetime(2026, 11, 30, 12, 0, 5, tzinfo=UTC)


def refresh(at=FETCHED_AT, **fake):
    """`refresh_markets` for binance with the recorded exchangeInfo served (or `fake` as the response)."""
    with responses.RequestsMock() as mock:
        mock.get(EXCHANGE_INFO_URL, **(fake or {"json": EXCHANGE_INFO}))
        report = markets.refresh_markets(db.session, current_settings(), "binance", clock=lambda: at)
        assert [call.request.url for call in mock.calls] == [EXCHANGE_INFO_URL]  # spot only: no futures requests
    db.session.commit()
    return report


def rules_error(symbol, now=FETCHED_AT + timedelta(hours=1)):
    with pytest.raises(InvalidInputError) as raised:
        markets.market_rules(db.session, current_settings(), "binance", symbol, now=now)
    assert raised.value.field == "symbol"
    return raised.value.message


def test_refresh_stores_the_spot_markets_with_the_fetch_time_and_replaces_the_snapshot(app):
    before = markets.known_markets(db.session, current_settings(), "binance")
    assert (before.bundled, before.source, before.catalog.symbols) == (
        True,
        "bundled snapshot of 2025-01-01",
        ["BTC/USDT", "ETH/USDT"],
    )

    report = refresh()
    assert (report.exchange_id, report.fetched_at, report.market_count) == ("binance", FETCHED_AT, 6)
    assert report.previous == "bundled snapshot of 2025-01-01, 2 markets"
    assert report.added == ["BCC/USDT", "BNB/USDT", "ETH/BTC", "SOL/USDT"]
    assert report.removed == []

    db.session.expire_all()
    [stored] = markets.stored_markets(db.session)
    assert (stored.exchange_id, stored.fetched_at, stored.market_count) == ("binance", FETCHED_AT, 6)
    known = markets.known_markets(db.session, current_settings(), "binance")
    assert (known.bundled, known.fetched_at, known.source) == (False, FETCHED_AT, "fetched 2026-11-30 12:00 UTC")
    sol = markets.market_rules(db.session, current_settings(), "binance", "SOL/USDT")
    assert (sol.base, sol.quote, sol.amount_step, sol.price_step, sol.min_amount, sol.min_notional) == (
        "SOL",
        "USDT",
        Decimal("0.001"),
        Decimal("0.01"),
        Decimal("0.001"),
        Decimal("5"),
    )
    # The stored markets are ccxt's own: the paper exchange and ccxt clients get them unchanged.
    raw = markets.raw_markets(db.session, current_settings(), "binance")
    assert raw["SOL/USDT"]["info"]["symbol"] == "SOLUSDT" and raw["BCC/USDT"]["active"] is False

    again = refresh(at=FETCHED_AT + timedelta(days=1))
    assert (again.previous, again.added, again.removed) == ("fetched 2026-11-30 12:00 UTC, 6 markets", [], [])


def test_a_symbol_missing_from_the_bundled_snapshot_says_to_refresh(app):
    message = rules_error("SOL/USDT")
    assert message == (
        "unknown symbol 'SOL/USDT' on binance: not in the stored binance markets (bundled snapshot of 2025-01-01, "
        "2 market(s): BTC/USDT, ETH/USDT); if binance lists it, refresh them (markets refresh)"
    )


def test_a_symbol_missing_from_fresh_markets_is_not_a_market_of_the_exchange(app):
    refresh()
    message = rules_error("DOGE/USDT")
    assert message == (
        "unknown symbol 'DOGE/USDT' on binance: not a market of binance (fetched 2026-11-30 12:00 UTC, "
        "6 market(s): BCC/USDT, BNB/USDT, BTC/USDT, ETH/BTC, ETH/USDT, SOL/USDT)"
    )


def test_a_symbol_missing_from_old_markets_says_to_refresh_them(app):
    refresh()
    message = rules_error("DOGE/USDT", now=FETCHED_AT + MARKETS_FRESH_FOR + timedelta(minutes=1))
    assert "not in the stored binance markets (fetched 2026-11-30 12:00 UTC" in message
    assert message.endswith("if binance lists it, refresh them (markets refresh)")


def test_a_failed_refresh_keeps_the_stored_markets_and_says_why_on_one_line(app):
    refresh()
    with pytest.raises(MarketDataUnavailableError) as raised:
        refresh(at=FETCHED_AT + timedelta(days=1), body=requests.ConnectionError("connection refused"))
    message = raised.value.message
    assert message.startswith("binance markets unavailable (NetworkError")
    assert "\n" not in message
    db.session.rollback()
    [stored] = markets.stored_markets(db.session)
    assert (stored.fetched_at, stored.market_count) == (FETCHED_AT, 6)


def test_an_exchange_that_refuses_is_reported_and_nothing_is_stored(app):
    with pytest.raises(MarketDataUnavailableError, match=r"^binance markets unavailable \("):
        refresh(status=503, json={"code": -1, "msg": "System is under maintenance."})
    db.session.rollback()
    assert markets.stored_markets(db.session) == []
    assert markets.known_markets(db.session, current_settings(), "binance").bundled


def test_an_exchange_ccxt_does_not_know_is_invalid_input(app):
    with pytest.raises(InvalidInputError) as raised:
        markets.refresh_markets(db.session, current_settings(), "nosuchexchange")
    assert raised.value.field == "exchange"
    assert 'got "nosuchexchange"' in raised.value.message


def test_an_exchange_without_stored_or_bundled_markets_says_to_fetch_them(app):
    with pytest.raises(InvalidInputError) as raised:
        markets.catalog(db.session, current_settings(), "kraken")
    assert raised.value.field == "exchange"
    assert "no markets snapshot for exchange 'kraken'" in raised.value.message
    assert raised.value.message.endswith("no markets stored for it either: fetch them first (markets refresh)")
