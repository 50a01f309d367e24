"""The dashboard's money: after a filled BUY on a paper account it shows the BTC held, the equity near the 100 USDT
the account started with (not the 63 USDT of cash left), and the watch run that bought it."""

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app import current_settings
from app.extensions import db
from app.models import OperatorSetting, Position
from app.services import replay, watch_runs
from app.services.credentials import signal_services
from app.services.watch_runs import DueRun
from tests import factories
from tests.web.test_web import PASSWORD, sign_in

BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)  # rules:rsi_reversion BUYs 0.00084 BTC at 43,624.00 here


def services_for(session, user_id):
    return signal_services(session, current_settings(), user_id)


@pytest.fixture
def bought(app):
    user = factories.user(db.session, email="ada@example.com", password=PASSWORD, display_name="Ada")
    account = factories.paper_account(db.session, user, name="My paper")
    watch = factories.watch(db.session, user, account, signal_source="rules:rsi_reversion", auto_execute=True)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    claimed = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    watch_runs.execute_run(db.session, current_settings(), claimed.id, services_for, "store")
    return user, account


def text_of(page: str) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).replace("\xa0", " ")


def card(page: str, testid: str) -> str:
    """The text of the account card `testid`."""
    found = re.search(rf'<article [^>]*data-testid="{testid}"[^>]*>(.*?)</article>', page, re.S)
    assert found, page
    return text_of(found.group(1))


def section(page: str, heading: str) -> str:
    found = re.search(rf">{heading}</h2>(.*?)</section>", page, re.S)
    assert found, page
    return text_of(found.group(1))


def test_after_a_buy_the_dashboard_shows_the_btc_held_and_equity_near_the_start(client, bought):
    _, account = bought
    sign_in(client)
    page = client.get("/").get_data(as_text=True)

    accounts = card(page, f"account-{account.id}")
    equity = Decimal(re.search(r"My paper Trading .*? ([\d,.]+) USDT [+-]", accounts).group(1).replace(",", ""))
    assert Decimal(98) < equity < Decimal(102), accounts  # cash alone is 63.32 USDT
    assert "Cash 63.32 USDT" in accounts  # the cash, shown beside the equity
    assert "valued at replay prices" in accounts
    assert re.search(r"[+-]\d+\.\d\d+ USDT \([+-]\d+\.\d\d?%\)", accounts), accounts  # change vs. the start
    assert "since the start of 100.00 USDT" in accounts

    held = section(page, "Open positions")
    assert "BTC/USDT" in held and "0.00084 BTC" in held and "43,624.00 USDT" in held, held
    assert "replay 1h close" in held and "replay time" in held
    assert "42,434.55 USDT" in held  # the stop loss

    runs = section(page, "Recent watch runs")
    assert re.search(
        r"2024-01-12 16:00 UTC #\d+ BTC/USDT 1h rules:rsi_reversion "
        r"BUY \(confidence 62\); approved \(APPROVED, SIZED\); order",
        runs,
    ), runs


def test_a_position_without_a_price_says_so(client, app):
    user = factories.user(db.session, email="ada@example.com", password=PASSWORD, display_name="Ada")
    account = factories.paper_account(db.session, user, name="My paper", current_balance=Decimal("75"))
    db.session.add(
        Position(
            account_id=account.id,
            symbol="SOL/USDT",
            quantity=Decimal("0.25"),
            entry_price=Decimal("100"),
            cost_basis=Decimal("25"),
        )
    )
    db.session.commit()
    sign_in(client)
    page = client.get("/").get_data(as_text=True)
    accounts = card(page, f"account-{account.id}")
    assert "100.00 USDT" in accounts and "No price for SOL/USDT: counted at the entry price." in accounts
    held = section(page, "Open positions")
    assert "SOL/USDT" in held and "price unavailable" in held


def test_the_dashboard_says_where_the_replay_is_and_when_it_has_finished(client, bought):
    sign_in(client, "ada@example.com")
    page = client.get("/").get_data(as_text=True)
    assert "replay-finished" not in page
    now = text_of(re.search(r'data-testid="replay-now">(.*?)</p>', page, re.S).group(1))
    assert now.startswith("replay of binance ") and ": now 2024-" in now

    # An installation whose replay started 30 days ago has played all of its 5,615 bars (about 15.6 h at 360x).
    started = db.session.get(OperatorSetting, replay.STARTED_AT)
    started.value = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    db.session.commit()
    page = client.get("/").get_data(as_text=True)
    now = text_of(re.search(r'data-testid="replay-now">(.*?)</p>', page, re.S).group(1))
    assert "finished at 2024-09-06 04:00 (held at the last bar)" in now
    finished = text_of(page.split('data-testid="replay-finished">')[1].split("</p>")[0])
    assert "nothing new closes" in finished and "delete instance/steadyhand.db" in finished
