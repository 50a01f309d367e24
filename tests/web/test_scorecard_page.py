"""/scorecard on SQLite and PostgreSQL: a source's and a watch's signals scored after their horizon (hit rate, mean
move, hypothetical PnL, AI cost, net, buy-and-hold), pending ones named but not counted, the period's validation
(400 naming the field and the value, what was typed kept), the empty state, sign-in and only the user's signals."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.extensions import db
from app.persistence.candles import import_candles
from exchanges.candles import Candle
from tests import factories

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CLOSES = [100, 110, 99, 120, 90]
AI = "deepseek:deepseek-chat"


def scored(user, bars_actions, horizon=1):
    candles = [Candle(T0 + timedelta(hours=i), *(Decimal(c),) * 4, Decimal(1)) for i, c in enumerate(CLOSES)]
    import_candles(db.session, "testex", "XYZ/USDT", "1h", candles)
    [account] = user.accounts
    watch = factories.watch(db.session, user, account, exchange_id="testex", symbol="XYZ/USDT", signal_source=AI)
    for bar, action in bars_actions:
        factories.analysis(
            db.session,
            user,
            account,
            exchange_id="testex",
            symbol="XYZ/USDT",
            bar_time=T0 + timedelta(hours=bar),
            signal_source=AI,
            provider="deepseek",
            model="deepseek-chat",
            cost_usd=Decimal("0.02"),
            watch_id=watch.id,
            signal={**factories.HOLD_SIGNAL, "action": action, "horizon_bars": horizon},
        )
    db.session.commit()
    return watch


def test_the_scorecard_needs_sign_in(client):
    response = client.get("/scorecard")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_source_and_its_watch_are_scored(signed_in, ada, stranger):
    watch = scored(ada, [(0, "BUY"), (1, "BUY"), (3, "SELL"), (2, "HOLD")])
    page = signed_in.get("/scorecard").get_data(as_text=True)
    row = page[page.index(f'data-testid="score-source-{AI}"') :]
    row = row[: row.index("</tr>")]
    assert "2 buy, 1 sell" in row and "3 scored" in row
    assert "67%" in row and "2 of 3" in row  # +10 %, -10 %, +25 % the signal's way
    assert "+8.33%" in row
    assert "+24.40 USDT" in row  # 100 x (0.10 - 0.002) + 100 x (-0.10 - 0.002) + 100 x (0.25 - 0.002)
    assert "$0.0800" in row and "4 analyses" in row
    assert "+24.32 USDT" in row  # net after the AI cost
    assert "-10.20 USDT" in row  # buy and hold 100 -> 90, 0.1 % each way
    assert "no rules:sma_cross signals" in row
    assert f'data-testid="score-watch-{watch.id}"' in page and f"#{watch.id} XYZ/USDT 1h" in page
    assert "How it is counted" in page
    assert 'data-chart-url="/scorecard/chart.json"' in page


def test_a_source_with_only_hold_signals_shows_no_money_in_no_currency(signed_in, ada):
    scored(ada, [(0, "HOLD"), (1, "HOLD")])
    page = signed_in.get("/scorecard").get_data(as_text=True)
    row = page[page.index(f'data-testid="score-source-{AI}"') :]
    row = row[: row.index("</tr>")]
    assert "0 buy, 0 sell" in row and "2 analyses" in row
    assert row.count("no BUY or SELL signal") == 1  # said once, in the first cell
    assert " quote" not in row
    for column in ("Traded PnL", "Advice-only PnL", "Net after AI cost"):
        assert f'data-label="{column}" class="num">\u2013</td>' in row


def test_the_chart_follows_every_signal_beside_buy_and_hold(signed_in, ada):
    scored(ada, [(0, "BUY"), (1, "BUY"), (3, "SELL")])
    response = signed_in.get("/scorecard/chart.json")
    assert response.status_code == 200
    [pane] = response.json["panes"]
    assert pane["title"] == "Cumulative PnL per 100 staked per signal, after a 0.1% fee each way"
    ai, hold = pane["series"]
    assert ai["name"] == f"{AI}: every signal followed" and hold["name"] == "buy and hold XYZ/USDT 1h"
    hours = [int((T0 + timedelta(hours=h)).timestamp()) for h in (2, 3, 5)]
    assert [(p["time"], round(p["value"], 6)) for p in ai["data"]] == list(zip(hours, [9.8, -0.4, 24.4], strict=True))
    assert round(hold["data"][-1]["value"], 6) == -10.2
    assert signed_in.get("/scorecard/chart.json?since=nope").status_code == 400


def test_on_the_replay_signals_before_their_horizon_are_pending(signed_in, ada):
    """The app's market is the replay: its clock (not the wall clock) says whose horizon has passed."""
    [account] = ada.accounts
    for bar, horizon in ((datetime(2024, 1, 10, tzinfo=UTC), 2), (datetime(2024, 1, 16, 3, tzinfo=UTC), 24)):
        factories.analysis(
            db.session,
            ada,
            account,
            bar_time=bar,
            signal={**factories.HOLD_SIGNAL, "action": "BUY", "horizon_bars": horizon},
        )
    db.session.commit()
    page = signed_in.get("/scorecard").get_data(as_text=True)
    assert "replay time (the replay's clock, not today's)" in page
    assert "1 signal still pending" in page
    row = page[page.index('data-testid="score-source-rules:sma_cross"') :]
    assert "2 buy, 0 sell" in row and "1 scored, 1 pending" in row and "this is the baseline" in row


def test_a_passed_horizon_without_a_stored_close_is_not_counted(signed_in, ada):
    scored(ada, [(0, "BUY")], horizon=400)  # the store's clock is the wall clock: passed, but not stored
    page = signed_in.get("/scorecard").get_data(as_text=True)
    assert "without a stored close" in page and "0 scored" in page


def test_the_period_is_validated(signed_in, ada):
    response = signed_in.get("/scorecard?since=2024-02-01&until=2024-01-01")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "since 2024-02-01 is after until 2024-01-01" in page and 'value="2024-02-01"' in page
    response = signed_in.get("/scorecard?until=soon")
    assert response.status_code == 400
    assert "until must be a day as YYYY-MM-DD, got &#34;soon&#34;" in response.get_data(as_text=True)


def test_no_signals_says_what_to_do_next(signed_in, ada, stranger):
    scored(stranger, [(0, "BUY")])
    page = signed_in.get("/scorecard").get_data(as_text=True)
    assert "No signals yet." in page and "go to the dashboard" in page
    assert "score-source" not in page
