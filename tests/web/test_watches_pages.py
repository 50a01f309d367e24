"""/watches: the list with last and next runs, add, edit, pause, resume, delete and "run now" (rules on stored
candles), on both databases, with CSRF on; another user's watch is a 404 everywhere."""

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask

from app.extensions import db
from app.models import Account, Watch, WatchRun
from app.persistence.candles import import_candles
from exchanges.timeframes import last_closed_bar_open
from tests import factories
from tests.conftest import emptied_after, migrated_apps
from tests.web.helpers import csrf_token, post_form

BTC_1H = "binance_BTCUSDT_1h_2024-01_2024-09.csv"
BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)  # rules:rsi_reversion BUYs 0.00084 BTC at 43,624.00 USDT here


@pytest.fixture(scope="session")
def store_app_factory(tmp_path_factory):
    """The web app on the offline candle store (as `STEADYHAND_MARKET=store`): runs read the imported candles."""
    yield from migrated_apps(tmp_path_factory, "web-store", STEADYHAND_MARKET="store")


@pytest.fixture
def app(store_app_factory, backend: str) -> Iterator[Flask]:
    yield from emptied_after(store_app_factory(backend))


@pytest.fixture
def btc_candles(app):
    factories.candles(db.session, BTC_1H)
    db.session.commit()


@pytest.fixture
def candles_to_the_buy(app):
    """BTC/USDT 1h candles up to the bar rsi_reversion buys on: run now analyses that bar."""
    rows = [c for c in factories._read(BTC_1H, "1h") if c.open_time <= BUY_BAR]
    import_candles(db.session, "binance", "BTC/USDT", "1h", rows)
    db.session.commit()


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).replace("\xa0", " ")


def account_of(user) -> Account:
    return db.session.query(Account).filter_by(user_id=user.id).one()


def new_watch(**fields) -> dict:
    return {
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "exchange_id": "binance",
        "signal_source": "rules:rsi_reversion",
        "signal_chain": "",
        "params": "",
        "account_id": "",
        "max_cost_per_call_usd": "",
        "daily_budget_usd": "",
        **fields,
    }


def watches_of(user) -> list[Watch]:
    db.session.expire_all()
    return db.session.query(Watch).filter_by(user_id=user.id).order_by(Watch.id).all()


# --- list ------------------------------------------------------------------------------------------------------------


def test_signed_out_pages_redirect_to_sign_in(client):
    for path in ("/watches", "/watches/new", "/watches/1", "/watches/1/edit"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_empty_list_says_how_to_add_one(signed_in):
    page = signed_in.get("/watches").get_data(as_text=True)
    assert "No watches yet." in page and 'href="/watches/new"' in page


def test_list_shows_each_watch_with_budgets_mode_state_last_and_next_run(signed_in, ada, stranger):
    account = account_of(ada)
    watch = factories.watch(
        db.session,
        ada,
        account,
        signal_source="rules:sma_cross",
        signal_params={"fast": 5},
        max_cost_per_call_usd=Decimal("0.002"),
        daily_budget_usd=Decimal("0.5"),
        auto_execute=True,
        last_bar_at=datetime(2024, 9, 1, 1, tzinfo=UTC),
    )
    paused = factories.watch(db.session, ada, None, symbol="ETH/USDT", enabled=False)
    # On the candle store the scheduler's clock is the wall clock: a watch that ran the latest closed day runs next
    # after the close of the day forming now (plus the 5 s settle).
    latest_day = last_closed_bar_open("1d", datetime.now(UTC) - timedelta(seconds=5))
    daily = factories.watch(db.session, ada, None, symbol="ETH/USDT", timeframe="1d", last_bar_at=latest_day)
    factories.watch(db.session, stranger, None, symbol="SOL/USDT")
    db.session.add(
        WatchRun(
            watch_id=watch.id,
            bar_time=datetime(2024, 9, 1, 1, tzinfo=UTC),
            trigger="schedule",
            status="failed",
            failed_step="candles",
            error_code="NO_CANDLES",
            error_message="no BTC/USDT 1h candles stored",
            steps=[],
        )
    )
    db.session.commit()
    page = signed_in.get("/watches").get_data(as_text=True)
    row = text_of(re.search(rf'<tr data-testid="watch-{watch.id}">(.*?)</tr>', page, re.S).group(1))
    assert "BTC/USDT 1h" in row and "rules:sma_cross fast=5" in row
    assert "Ada paper" in row and "$0.0020 a call, $0.5000 a day" in row
    assert "auto-execute" in row and "running" in row
    assert "2024-09-01 01:00 UTC failed at candles: NO_CANDLES no BTC/USDT 1h candles stored" in row
    assert "due now (the next scheduler tick)" in row  # its latest closed bar has no run yet
    day_row = text_of(re.search(rf'<tr data-testid="watch-{daily.id}">(.*?)</tr>', page, re.S).group(1))
    assert f"{latest_day + timedelta(days=2):%Y-%m-%d} 00:00 UTC Run now" in day_row, day_row
    other = text_of(re.search(rf'<tr data-testid="watch-{paused.id}">(.*?)</tr>', page, re.S).group(1))
    assert "advice only" in other and "paused" in other and "not run yet" in other and "Resume" in other
    assert "SOL/USDT" not in page


# --- add -------------------------------------------------------------------------------------------------------------


def test_add_form_offers_sources_and_the_users_accounts(signed_in, ada, stranger):
    page = signed_in.get("/watches/new").get_data(as_text=True)
    assert '<option value="rules:rsi_reversion">' in page and '<option value="deepseek">' in page
    assert "Ada paper (paper, binance, USDT)" in page and "Eve paper" not in page
    assert '<label for="max_cost_per_call_usd">Cap per analysis (USD)</label>' in page


def test_add_a_watch_then_see_it(signed_in, ada, btc_candles):
    account = account_of(ada)
    response = post_form(
        signed_in,
        "/watches/new",
        new_watch(
            symbol="btc/usdt",
            params="low=25",
            account_id=str(account.id),
            max_cost_per_call_usd="0.002",
            daily_budget_usd="1",
            auto_execute="y",
        ),
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    [watch] = watches_of(ada)
    assert response.headers["Location"] == f"/watches/{watch.id}"
    assert (watch.symbol, watch.timeframe, watch.signal_source) == ("BTC/USDT", "1h", "rules:rsi_reversion")
    assert watch.signal_params == {"low": 25.0}
    assert watch.account_id == account.id and watch.auto_execute
    assert watch.max_cost_per_call_usd == Decimal("0.002") and watch.daily_budget_usd == Decimal("1")
    page = signed_in.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Watch #{watch.id} BTC/USDT 1h with rules:rsi_reversion added: it runs on every 1h close." in page
    assert "No runs yet." in page


def test_add_with_a_chain_typed_uses_the_chain(signed_in, ada, btc_candles):
    response = post_form(signed_in, "/watches/new", new_watch(signal_chain="rules:sma_cross -> rules:rsi_reversion"))
    assert response.status_code == 302
    assert watches_of(ada)[0].signal_source == "rules:sma_cross -> rules:rsi_reversion"


@pytest.mark.parametrize(
    ("fields", "field", "message", "kept"),
    [
        ({"symbol": ""}, "symbol", "Symbol is required, e.g. BTC/USDT.", None),
        ({"symbol": "NOPE/USDT"}, "symbol", "NOPE/USDT", "NOPE/USDT"),
        (
            {"max_cost_per_call_usd": "lots"},
            "max_cost_per_call_usd",
            'The cap per analysis must be an amount in USD, got "lots"',
            "lots",
        ),
        (
            {"daily_budget_usd": "-1"},
            "daily_budget_usd",
            'The daily cap must be between 0 and 100,000 USD, got "-1"',
            "-1",
        ),
        ({"params": "fast"}, "params", 'Rule parameters must be written NAME=VALUE, got "fast".', "fast"),
        ({"signal_chain": "rules:nope"}, "signal_chain", "unknown rules strategy 'nope'", "rules:nope"),
        ({"auto_execute": "y"}, "auto_execute", "Auto-execute needs an account", None),
    ],
)
def test_add_refuses_bad_input_on_its_field_keeping_what_was_typed(
    signed_in, ada, btc_candles, fields, field, message, kept
):
    response = post_form(signed_in, "/watches/new", new_watch(**fields))
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    assert error and message in error.group(1), page
    if kept is not None:
        assert f'value="{kept}"' in page
    assert watches_of(ada) == []


def test_add_a_duplicate_says_which_watch_exists(signed_in, ada, btc_candles):
    assert post_form(signed_in, "/watches/new", new_watch()).status_code == 302
    response = post_form(signed_in, "/watches/new", new_watch())
    assert response.status_code == 400
    assert "you already have watch #" in response.get_data(as_text=True)
    assert len(watches_of(ada)) == 1


def test_add_with_someone_elses_account_is_refused(signed_in, ada, stranger, btc_candles):
    response = post_form(signed_in, "/watches/new", new_watch(account_id=str(account_of(stranger).id)))
    assert response.status_code == 400 and watches_of(ada) == []


def test_add_without_csrf_is_refused(signed_in, ada, btc_candles):
    response = signed_in.post("/watches/new", data=new_watch())
    assert response.status_code == 400 and watches_of(ada) == []


# --- edit, pause, resume, delete -------------------------------------------------------------------------------------


@pytest.fixture
def watch(ada):
    made = factories.watch(db.session, ada, None, signal_source="rules:rsi_reversion")
    db.session.commit()
    return made


def edit_fields(**fields) -> dict:
    return {k: v for k, v in new_watch(**fields).items() if k not in ("symbol", "timeframe", "exchange_id")}


def test_edit_shows_the_current_settings_and_saves_changes(signed_in, ada, watch):
    page = signed_in.get(f"/watches/{watch.id}/edit").get_data(as_text=True)
    assert '<option selected value="rules:rsi_reversion">' in page or (
        'value="rules:rsi_reversion" selected' in page
    ), page
    account = account_of(ada)
    response = post_form(
        signed_in,
        f"/watches/{watch.id}/edit",
        edit_fields(signal_source="rules:sma_cross", params="fast=5, slow=20", account_id=str(account.id)),
    )
    assert response.status_code == 302 and response.headers["Location"] == f"/watches/{watch.id}"
    [changed] = watches_of(ada)
    assert changed.signal_source == "rules:sma_cross" and changed.account_id == account.id
    assert {k: int(v) for k, v in changed.signal_params.items()} == {"fast": 5, "slow": 20}
    assert f"Watch #{watch.id} BTC/USDT 1h saved." in signed_in.get(f"/watches/{watch.id}").get_data(as_text=True)


def test_edit_refuses_bad_input_keeping_it(signed_in, ada, watch):
    response = post_form(signed_in, f"/watches/{watch.id}/edit", edit_fields(params="low=80, high=70"))
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert "parameter low (80) must be less than high (70)" in page and 'value="low=80, high=70"' in page
    assert watches_of(ada)[0].signal_params == {}


def test_edit_without_csrf_is_refused(signed_in, ada, watch):
    response = signed_in.post(f"/watches/{watch.id}/edit", data=edit_fields(signal_source="rules:sma_cross"))
    assert response.status_code == 400 and watches_of(ada)[0].signal_source == "rules:rsi_reversion"


def test_pause_resume_and_delete(signed_in, ada, watch):
    token = csrf_token(signed_in, "/watches")
    response = signed_in.post(f"/watches/{watch.id}/pause", data={"csrf_token": token, "next": "index"})
    assert response.status_code == 302 and response.headers["Location"] == "/watches"
    assert not watches_of(ada)[0].enabled
    assert "paused: it does not run until resumed." in signed_in.get("/watches").get_data(as_text=True)
    response = signed_in.post(f"/watches/{watch.id}/resume", data={"csrf_token": token})
    assert response.headers["Location"] == f"/watches/{watch.id}" and watches_of(ada)[0].enabled
    response = signed_in.post(f"/watches/{watch.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302 and watches_of(ada) == []
    assert "deleted with its run history" in signed_in.get("/watches").get_data(as_text=True)


def test_buttons_without_csrf_change_nothing(signed_in, ada, watch):
    for action in ("pause", "delete", "run"):
        assert signed_in.post(f"/watches/{watch.id}/{action}").status_code == 400
    assert watches_of(ada)[0].enabled


def test_someone_elses_watch_is_404_everywhere(signed_in, ada, stranger):
    theirs = factories.watch(db.session, stranger, None)
    db.session.commit()
    token = csrf_token(signed_in, "/watches")
    assert signed_in.get(f"/watches/{theirs.id}").status_code == 404
    assert signed_in.get(f"/watches/{theirs.id}/edit").status_code == 404
    for action in ("edit", "pause", "resume", "delete", "run"):
        assert signed_in.post(f"/watches/{theirs.id}/{action}", data={"csrf_token": token}).status_code == 404, action
    assert watches_of(stranger)[0].enabled


# --- run now ---------------------------------------------------------------------------------------------------------


def test_run_now_buys_and_opens_the_signal(signed_in, ada, candles_to_the_buy):
    account = account_of(ada)
    watch = factories.watch(db.session, ada, account, signal_source="rules:rsi_reversion", auto_execute=True)
    db.session.commit()
    response = post_form(signed_in, f"/watches/{watch.id}/run", {}, form_path=f"/watches/{watch.id}")
    assert response.status_code == 302
    run = db.session.query(WatchRun).filter_by(watch_id=watch.id).one()
    assert response.headers["Location"] == f"/analyses/{run.analysis_id}"
    page = text_of(signed_in.get(response.headers["Location"]).get_data(as_text=True))
    assert (
        "Run of bar 2024-01-12 16:00 UTC: BUY (confidence 62), approved and filled 0.00084 BTC at 43,624.00 USDT."
        in page
    ), page
    assert f"Signal #{run.analysis_id}: BTC/USDT 1h" in page and "approved" in page
    listing = text_of(signed_in.get(f"/watches/{watch.id}").get_data(as_text=True))
    assert "2024-01-12 16:00 UTC run now BUY confidence 62 approved order closed: buy 0.00084 at 43,624.00" in listing
    index = text_of(signed_in.get("/watches").get_data(as_text=True))
    assert "2024-01-12 16:00 UTC BUY confidence 62 approved order closed: buy 0.00084 at 43,624.00 USDT" in index


def test_run_now_with_advice_only_and_again_on_the_same_bar(signed_in, ada, btc_candles):
    watch = factories.watch(db.session, ada, None, signal_source="rules:rsi_reversion")
    db.session.commit()
    first = post_form(signed_in, f"/watches/{watch.id}/run", {}, form_path="/watches")
    page = text_of(signed_in.get(first.headers["Location"]).get_data(as_text=True))
    assert "Run of bar 2024-09-06 03:00 UTC: HOLD (confidence 0): nothing to trade." in page
    second = post_form(signed_in, f"/watches/{watch.id}/run", {}, form_path="/watches")
    assert second.headers["Location"] == first.headers["Location"]
    page = text_of(signed_in.get(second.headers["Location"]).get_data(as_text=True))
    assert "(this bar had run already; a bar is analysed once)" in page
    assert db.session.query(WatchRun).filter_by(watch_id=watch.id).count() == 1


def test_run_now_without_candles_shows_the_failure_on_the_watch(signed_in, ada):
    watch = factories.watch(db.session, ada, None, signal_source="rules:rsi_reversion")
    db.session.commit()
    response = post_form(signed_in, f"/watches/{watch.id}/run", {}, form_path="/watches")
    assert response.headers["Location"] == f"/watches/{watch.id}"
    page = text_of(signed_in.get(response.headers["Location"]).get_data(as_text=True))
    assert re.search(
        r"Run of bar \d{4}-\d\d-\d\d \d\d:00 UTC failed at candles: INVALID_INPUT: no BTC/USDT 1h", page
    ), page


def test_watch_page_pages_its_runs(signed_in, ada, watch):
    start = datetime(2024, 9, 1, tzinfo=UTC)
    db.session.add_all(
        WatchRun(
            watch_id=watch.id, bar_time=start + timedelta(hours=i), trigger="schedule", status="succeeded", steps=[]
        )
        for i in range(23)
    )
    db.session.commit()
    first = signed_in.get(f"/watches/{watch.id}").get_data(as_text=True)
    assert first.count('<tr data-testid="run-') == 20 and "2024-09-01 22:00 UTC" in first
    older = re.search(r'href="(/watches/\d+\?before=\d+)">Older runs', first).group(1)
    second = signed_in.get(older).get_data(as_text=True)
    assert second.count('<tr data-testid="run-') == 3 and "2024-09-01 00:00 UTC" in second
    assert "Older runs" not in second and "Newest runs" in second
