"""/api/v1/scorecard on SQLite and PostgreSQL: the hand-made market of tests/services/test_scorecard.py as JSON
(amounts as strings), the window's validation, the read scope, and another user's signals never shown."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.extensions import db
from app.persistence.candles import import_candles
from exchanges.candles import Candle
from tests import factories
from tests.api.conftest import ApiClient, issue

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CLOSES = [100, 110, 99, 120, 90]


def signals(user, watch, *bars_actions):
    for bar, action in bars_actions:
        factories.analysis(
            db.session,
            user,
            exchange_id="testex",
            symbol="XYZ/USDT",
            bar_time=T0 + timedelta(hours=bar),
            signal_source="deepseek:deepseek-chat",
            provider="deepseek",
            model="deepseek-chat",
            cost_usd=Decimal("0.02"),
            watch_id=watch.id,
            signal={**factories.HOLD_SIGNAL, "action": action, "horizon_bars": 1},
        )


def test_the_scorecard_scores_signals_after_their_horizon(caller, stranger):
    candles = [Candle(T0 + timedelta(hours=i), *(Decimal(c),) * 4, Decimal(1)) for i, c in enumerate(CLOSES)]
    import_candles(db.session, "testex", "XYZ/USDT", "1h", candles)
    watch = factories.watch(db.session, caller.user, exchange_id="testex", symbol="XYZ/USDT")
    signals(caller.user, watch, (0, "BUY"), (1, "BUY"), (3, "SELL"), (2, "HOLD"))
    other = factories.watch(db.session, stranger.user, exchange_id="testex", symbol="XYZ/USDT")
    signals(stranger.user, other, (0, "SELL"))
    db.session.commit()

    response = caller.get("/api/v1/scorecard")
    assert response.status_code == 200
    body = response.json
    assert (body["replay"], body["fee_rate"], body["stake"], body["pending"]) == (False, "0.001", "100", 0)
    [row] = body["by_source"]
    assert (row["signal_source"], row["kind"], row["symbols"]) == ("deepseek:deepseek-chat", "source", ["XYZ/USDT"])
    tally = row["signals"]
    assert (tally["buys"], tally["sells"], tally["resolved"], tally["hits"]) == (2, 1, 3, 2)
    assert Decimal(tally["hit_rate"]) == round(Decimal(2) / 3, 6)
    assert Decimal(tally["average_move_pct"]) == round(Decimal(25) / 3, 6)  # (+10 - 10 + 25) / 3
    assert Decimal(tally["hypothetical_pnl"]) == Decimal("24.4")  # 9.8 - 10.2 + 24.8
    assert (row["ai_cost_usd"], row["analyses"], row["quote_currency"]) == ("0.08", 4, "USDT")
    assert Decimal(row["net_after_ai"]) == Decimal("24.32")
    assert row["buy_and_hold"]["change_pct"] == "-10" and row["buy_and_hold"]["pnl"] == "-10.2"
    assert row["buy_and_hold"]["start"] == "2024-01-01T01:00:00+00:00"
    [by_watch] = body["by_watch"]
    assert by_watch["watch_id"] == watch.id and by_watch["label"] == f"#{watch.id} XYZ/USDT 1h"


def test_the_window_is_validated(caller):
    response = caller.get("/api/v1/scorecard?since=2024-02-01&until=2024-01-01")
    assert response.status_code == 422
    assert response.json["error"]["message"] == "since 2024-02-01 is after until 2024-01-01"
    assert caller.get("/api/v1/scorecard?since=yesterday").status_code == 422
    assert caller.get("/api/v1/scorecard?days=3").status_code == 422  # unknown parameters are refused
    empty = caller.get("/api/v1/scorecard?since=2024-01-01&until=2024-01-31").json
    assert (empty["by_source"], empty["since"], empty["until"]) == ([], "2024-01-01", "2024-01-31")


def test_the_scorecard_needs_the_read_scope(api_app, caller):
    writer = ApiClient(api_app, issue(caller.user, ["trade"]))
    assert writer.get("/api/v1/scorecard").status_code == 403
    assert caller.get("/api/v1/scorecard", token=None).status_code == 401
