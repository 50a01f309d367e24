"""`flask explain`: a decided and filled analysis printed for people and as JSON; someone else's is one line."""

import json
from datetime import UTC, datetime

import pytest

from app import current_settings
from app.extensions import db
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from tests import factories

BUY_BAR = datetime(2024, 1, 12, 16, 0, tzinfo=UTC)


@pytest.fixture
def executed(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    request = AnalysisRequest(
        user_id=user.id,
        symbol="BTC/USDT",
        timeframe="1h",
        signals="rules:rsi_reversion",
        account_id=account.id,
        until=BUY_BAR,
        execute=True,
    )
    services = signal_services(db.session, current_settings(), user.id)
    result = run_analysis(db.session, current_settings(), request, services)
    return user, account, result


def test_the_text_shows_signal_reasons_numbers_order_and_fill(runner, executed):
    _, account, result = executed
    output = runner.invoke(args=["explain", str(result.analysis.id)])
    assert output.exit_code == 0, output.output
    text = output.output
    assert f"analysis #{result.analysis.id}: BTC/USDT 1h on binance, bar opening 2024-01-12 16:00 UTC" in text
    assert "  BUY  confidence 62  entry 43624.0  stop 42434.55  target 46002.89  horizon 14 bar(s)" in text
    assert "  0.000000 USD (not cached)" in text
    assert f"risk decision #{result.trade.decision.id} for account #{account.id}" in text and ": APPROVED" in text
    assert "  SIZED: risk 1.00 USDT (1% of 100.00) / stop distance 1,189.45" in text
    assert "stop_distance=1189.45" in text
    assert "fee 0.03664416 USDT" in text
    assert ": buy 0.00084 at 43624 USDT = 36.64416 USDT, fee 0.03664416 USDT" in text
    assert "reproduce: flask --app wsgi analyze BTC/USDT --timeframe 1h --exchange binance" in text


def test_json_is_one_object(runner, executed):
    user, _, result = executed
    output = runner.invoke(args=["explain", str(result.analysis.id), "--json", "--user", user.email])
    assert output.exit_code == 0, output.output
    data = json.loads(output.output)
    assert data["analysis_id"] == result.analysis.id and data["signal"]["action"] == "BUY"
    [decision] = data["decisions"]
    assert decision["reasons"][0]["code"] == "APPROVED"
    fill = decision["orders"][0]["fills"][0]
    assert fill["fee"] == {"amount": "0.03664416", "currency": "USDT"}
    assert data["cost"]["cost"] == {"amount": "0", "currency": "USD"}


def test_someone_elses_analysis_is_one_line_not_found(runner, executed):
    _, _, result = executed
    stranger = factories.user(db.session)
    db.session.commit()
    output = runner.invoke(args=["explain", str(result.analysis.id), "--user", stranger.email])
    assert output.exit_code == 1
    assert output.output == f"Error: no analysis #{result.analysis.id} [ANALYSIS_ID]\n"
