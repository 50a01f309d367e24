"""/analyses and /analyses/<id>: a signal with the indicators it read, its answer, cost and cache status, the risk
decision with coded reasons and numbers, and the order with its fills; only the signed-in user's."""

import html
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app import current_settings
from app.extensions import db
from app.models import Account, AnalysisStatus, Decision, WatchRun
from app.services import watch_runs
from app.services.credentials import signal_services
from app.services.watch_runs import DueRun
from tests import factories
from tests.web.helpers import page_text, post_form

BTC_1H = "binance_BTCUSDT_1h_2024-01_2024-09.csv"
BUY_BAR = datetime(2024, 1, 12, 16, tzinfo=UTC)  # rules:rsi_reversion BUYs 0.00084 BTC at 43,624.00 USDT here


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).replace("\xa0", " ")


def section(page: str, heading_id: str) -> str:
    found = re.search(rf'<section class="card" aria-labelledby="{heading_id}">(.*?)</section>', page, re.S)
    assert found, page
    return text_of(found.group(1))


@pytest.fixture
def bought(ada):
    """Ada's watch bought on BUY_BAR (a scheduled run on the candle store): its run."""
    account = db.session.query(Account).filter_by(user_id=ada.id).one()
    watch = factories.watch(db.session, ada, account, signal_source="rules:rsi_reversion", auto_execute=True)
    factories.candles(db.session, BTC_1H)
    db.session.commit()
    claimed = watch_runs.claim(db.session, DueRun(watch.id, BUY_BAR, "schedule"), BUY_BAR + timedelta(hours=1))
    return watch_runs.execute_run(
        db.session,
        current_settings(),
        claimed.id,
        lambda session, user: signal_services(session, current_settings(), user),
        "store",
    )


def test_signed_out_pages_redirect_to_sign_in(client):
    for path in ("/analyses", "/analyses/1"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_a_filled_buy_shows_signal_indicators_decision_order_and_fills(signed_in, bought):
    run = bought
    page = signed_in.get(f"/analyses/{run.analysis_id}").get_data(as_text=True)
    text = text_of(page)
    assert f"Signal #{run.analysis_id}: BTC/USDT 1h" in text
    assert "Bar opened 2024-01-12 16:00 UTC (replay time), on binance" in text
    assert f"From run #{run.id} of watch #{run.watch_id} ." in text

    signal = section(page, "signal-h")
    assert "Action BUY Confidence 62 of 100" in signal
    assert re.search(r"Entry 43,6\d\d\.\d\d USDT Stop loss 42,434\.55 USDT Take profit [\d,]+\.\d\d USDT", signal), (
        signal
    )
    assert "Horizon 14 bars of 1h" in signal and "Reasoning" in signal and "Key factors" in signal

    cost = section(page, "cost-h")
    assert "Answered by rules rsi_reversion" in cost and "AI cost $0.0000" in cost
    assert "not cached (a rules strategy computes its answer, free)" in cost
    assert "Tokens 0 in, 0 out" in cost

    context = section(page, "context-h")
    assert "recomputed from the candle store" in context
    assert re.search(r"RSI 14 \d+\.\d ", context) and re.search(r"Close 4\d,\d{3}\.\d\d USDT", context), context
    assert "flask --app wsgi analyze BTC/USDT --timeframe 1h" in context

    risk = section(page, "risk-h")
    assert "Ada paper: approved" in risk and "APPROVED" in risk and "SIZED" in risk
    assert "Side and quantity BUY 0.00084 BTC (market)" in risk
    assert "Filled 0.00084 BTC at 43,624.00 USDT" in risk
    fill = re.search(r'<table class="stack fills">(.*?)</table>', page, re.S).group(1)
    fill_text = text_of(fill)
    assert re.search(r"BUY 2024-01-12 17:00 UTC 0\.00084 BTC 43,624\.00 USDT [\d.]+ (BTC|USDT|BNB)", fill_text), (
        fill_text
    )
    decision = db.session.query(Decision).filter_by(analysis_id=run.analysis_id).one()
    for reason in decision.reasons:
        for name in reason.get("values") or {}:
            assert html.escape(name.replace("_", " ").capitalize()) in page or name in page


def test_a_hold_is_no_trade_not_a_refusal_and_numbers_keep_six_digits(signed_in, ada):
    account = db.session.query(Account).filter_by(user_id=ada.id).one()
    hold = factories.analysis(db.session, ada, account, signal={**factories.HOLD_SIGNAL, "horizon_bars": 1})
    reason = {"code": "HOLD_SIGNAL", "message": "the signal proposes no trade", "values": {}}
    db.session.add(Decision(analysis_id=hold.id, account_id=account.id, approved=False, reasons=[reason]))
    small = factories.analysis(db.session, ada, account, bar_time=datetime(2024, 1, 2, tzinfo=UTC))
    values = {"notional": "49.840056", "risk_quantity": "0.03126954346"}
    reason = {"code": "NOTIONAL_TOO_SMALL", "message": "too small", "values": values}
    db.session.add(Decision(analysis_id=small.id, account_id=account.id, approved=False, reasons=[reason]))
    db.session.commit()
    risk = section(signed_in.get(f"/analyses/{hold.id}").get_data(as_text=True), "risk-h")
    assert "Ada paper: no trade: HOLD" in risk and "refused" not in risk
    assert "1 bar of 1h" in page_text(signed_in.get(f"/analyses/{hold.id}"))
    risk = section(signed_in.get(f"/analyses/{small.id}").get_data(as_text=True), "risk-h")
    assert "Notional 49.8401" in risk and "Risk quantity 0.0312695" in risk and "Ada paper: refused" in risk


def test_a_refused_buy_shows_its_codes_and_numbers(signed_in, ada):
    account = db.session.query(Account).filter_by(user_id=ada.id).one()
    analysis = factories.analysis(
        db.session,
        ada,
        account,
        signal={
            "action": "BUY",
            "confidence": 40,
            "entry_price": "43000",
            "stop_loss": "42000",
            "take_profit": "46000",
            "horizon_bars": 10,
            "reasoning": "Oversold bounce.",
            "key_factors": ["RSI 28"],
        },
    )
    db.session.add(
        Decision(
            analysis_id=analysis.id,
            account_id=account.id,
            approved=False,
            reasons=[
                {
                    "code": "CONFIDENCE_BELOW_MIN",
                    "message": "confidence 40 < 55",
                    "values": {"confidence": 40, "min_confidence": 55},
                }
            ],
        )
    )
    db.session.commit()
    page = signed_in.get(f"/analyses/{analysis.id}").get_data(as_text=True)
    risk = section(page, "risk-h")
    assert "Ada paper: refused" in risk
    assert "CONFIDENCE_BELOW_MIN confidence 40 < 55 Confidence 40 Min confidence 55" in risk
    assert "Oversold bounce." in page and "RSI 28" in page
    # On the replay market (this app's), the bundled candles give the indicators of a bar not in the store.
    assert "recomputed from the replay" in section(page, "context-h")


def test_a_cache_hit_of_a_model_shows_tokens_original_cost_and_the_stored_note(signed_in, ada):
    analysis = factories.analysis(
        db.session,
        ada,
        None,
        signal_source="deepseek",
        provider="deepseek",
        model="deepseek-chat",
        prompt_version="v3",
        schema_version="2",
        cache_key="ab" * 32,
        cached=True,
        cost_usd=Decimal("0"),
        original_cost_usd=Decimal("0.0123"),
        input_tokens=1500,
        cache_read_tokens=200,
        output_tokens=180,
        latency_ms=12,
        symbol="DOGE/USDT",
    )
    db.session.commit()
    page = signed_in.get(f"/analyses/{analysis.id}").get_data(as_text=True)
    cost = section(page, "cost-h")
    assert "cache hit answered from the response cache at no cost; the original call cost $0.0123" in cost
    assert "Tokens 1,500 in + 200 read from the provider's prompt cache, 180 out" in cost
    assert "Latency 12 ms" in cost and "Prompt version v3, schema 2" in cost
    context = section(page, "context-h")
    assert "are not in the candle store" in context and "The prompt is not stored." in context
    assert "No risk decision: the analysis was not judged against an account" in section(page, "risk-h")


def test_a_failed_analysis_says_why(signed_in, ada):
    analysis = factories.analysis(
        db.session,
        ada,
        None,
        status=AnalysisStatus.REFUSED,
        signal=None,
        error_code="BUDGET_EXCEEDED",
        error_message="this call could cost up to $0.01, over the watch's $0.002 cap",
    )
    db.session.commit()
    signal = section(signed_in.get(f"/analyses/{analysis.id}").get_data(as_text=True), "signal-h")
    assert "Refused BUDGET_EXCEEDED : no validated signal, so nothing executes." in signal
    assert "over the watch's $0.002 cap" in signal


def test_someone_elses_analysis_is_404(signed_in, stranger):
    theirs = factories.analysis(db.session, stranger)
    db.session.commit()
    assert signed_in.get(f"/analyses/{theirs.id}").status_code == 404
    assert signed_in.get("/analyses/999999").status_code == 404
    assert f"#{theirs.id}" not in text_of(signed_in.get("/analyses").get_data(as_text=True))


def test_list_pages_newest_first_and_filters(signed_in, ada, stranger):
    ids = [
        factories.analysis(db.session, ada, None, bar_time=datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=i)).id
        for i in range(27)
    ]
    eth = factories.analysis(db.session, ada, None, symbol="ETH/USDT", status=AnalysisStatus.FAILED, signal=None)
    factories.analysis(db.session, stranger, None, symbol="SOL/USDT")
    db.session.commit()
    page = signed_in.get("/analyses").get_data(as_text=True)
    rows = re.findall(r'<tr data-testid="analysis-(\d+)">', page)
    assert [int(r) for r in rows] == [eth.id, *reversed(ids)][:25]
    assert "SOL/USDT" not in page
    older = html.unescape(re.search(r'href="([^"]+)">Older', page).group(1))
    assert [
        int(r) for r in re.findall(r'<tr data-testid="analysis-(\d+)">', signed_in.get(older).get_data(as_text=True))
    ] == ids[2::-1]

    filtered = signed_in.get("/analyses?symbol=eth/usdt&status=failed").get_data(as_text=True)
    assert re.findall(r'<tr data-testid="analysis-(\d+)">', filtered) == [str(eth.id)]
    assert 'value="eth/usdt"' in filtered and '<option value="failed" selected>' in filtered


def test_list_refuses_an_unknown_status_naming_it(signed_in, ada):
    response = signed_in.get("/analyses?status=great")
    assert response.status_code == 400
    assert "great" in html.unescape(response.get_data(as_text=True))


def test_empty_list_says_how_to_get_a_signal(signed_in):
    page = signed_in.get("/analyses").get_data(as_text=True)
    assert "No signals yet." in page and 'href="/watches"' in page


def test_the_run_is_linked_from_its_watch(signed_in, bought):
    page = signed_in.get(f"/watches/{bought.watch_id}").get_data(as_text=True)
    assert f'href="/analyses/{bought.analysis_id}"' in page
    assert db.session.get(WatchRun, bought.id).analysis_id == bought.analysis_id


def test_on_the_replay_market_a_watch_added_and_run_now_opens_its_signal(signed_in, ada):
    """The embedded default: the replay market (this app's), no candles imported; the form, run now and the signal
    page all work from the replay's bundled candles."""
    account = db.session.query(Account).filter_by(user_id=ada.id).one()
    fields = {
        "symbol": "ETH/USDT",
        "timeframe": "1h",
        "exchange_id": "binance",
        "signal_source": "rules:ema_rsi_volume",
        "account_id": str(account.id),
        "auto_execute": "y",
    }
    added = post_form(signed_in, "/watches/new", fields)
    assert added.status_code == 302, added.get_data(as_text=True)
    ran = post_form(signed_in, f"{added.headers['Location']}/run", {}, form_path=added.headers["Location"])
    assert re.fullmatch(r"/analyses/\d+", ran.headers["Location"]), ran.headers["Location"]
    page = signed_in.get(ran.headers["Location"]).get_data(as_text=True)
    assert re.search(r"Run of bar 2024-01-1\d \d\d:00 UTC: (BUY|SELL|HOLD) \(confidence \d+\)", text_of(page)), page
    assert "recomputed from the replay" in section(page, "context-h")
