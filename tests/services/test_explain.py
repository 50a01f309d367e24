"""Explaining an analysis on SQLite and PostgreSQL: a rules BUY on the bundled BTC/USDT 1h 2024 candles, decided and
filled on a paper account, shown with its signal, coded reasons and numbers, order and fill; a model's analysis
shown with what is stored of its request; someone else's analysis is not found."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app import current_settings
from app.errors import NotFoundError
from app.extensions import db
from app.models import AnalysisStatus, ResponseCacheEntry, WatchRun
from app.models.enums import RunStatus
from app.schemas.explain import ExplanationOut
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from app.services.explain import explain_analysis
from tests import factories

BUY_BAR = datetime(2024, 1, 12, 16, 0, tzinfo=UTC)
KEY = "a" * 64


@pytest.fixture
def trader(app):
    user = factories.user(db.session)
    account = factories.paper_account(db.session, user)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user, account


def analyse(user, **fields):
    values = {"user_id": user.id, "symbol": "BTC/USDT", "timeframe": "1h", "signals": "rules:rsi_reversion"}
    services = signal_services(db.session, current_settings(), user.id)
    return run_analysis(db.session, current_settings(), AnalysisRequest(**(values | fields)), services)


def explained(analysis_id, user_id):
    return ExplanationOut.of(explain_analysis(db.session, analysis_id, user_id))


def test_a_decided_and_filled_buy_is_explained_with_its_numbers(trader):
    user, account = trader
    result = analyse(user, account_id=account.id, until=BUY_BAR, execute=True)

    out = explained(result.analysis.id, user.id)

    assert (out.symbol, out.timeframe, out.bar_time, out.status) == ("BTC/USDT", "1h", BUY_BAR.isoformat(), "ok")
    assert (out.provider, out.model, out.signal_source) == ("rules", "rsi_reversion", "rules:rsi_reversion")
    assert out.signal["action"] == "BUY" and out.signal["stop_loss"] == "42434.55"
    assert out.cost.cost.model_dump() == {"amount": "0", "currency": "USD"}
    assert out.input.stored is False and "reads only the BTC/USDT 1h candles" in out.input.note
    assert out.input.reproduce.command == (
        "flask --app wsgi analyze BTC/USDT --timeframe 1h --exchange binance --signals rules:rsi_reversion "
        f"--until '2024-01-12 16:00' --account {account.id} --user {user.email}"
    )
    assert out.input.reproduce.rule_params is None  # a one-off analysis's --param values are not recorded

    [decision] = out.decisions
    assert (decision.approved, decision.account_id, decision.quote_currency) == (True, account.id, "USDT")
    assert [reason.code for reason in decision.reasons][:2] == ["APPROVED", "SIZED"]
    sized = decision.reasons[1]
    assert (sized.values["stop_distance"], sized.values["quantity"], sized.values["notional"]) == (
        "1189.45",
        "0.00084",
        "36.644160",
    )
    assert decision.order_spec["quantity"] == "0.00084"

    [order] = decision.orders
    assert (order.client_order_id, order.side, order.status, order.quantity, order.filled_quantity) == (
        f"sh{account.id}d{decision.id}",
        "buy",
        "closed",
        "0.00084",
        "0.00084",
    )
    assert order.average_price.model_dump() == {"amount": "43624", "currency": "USDT"}
    assert order.fee.model_dump() == {"amount": "0.03664416", "currency": "USDT"}
    [fill] = order.fills
    assert (fill.quantity, fill.price.amount, fill.value.amount) == ("0.00084", "43624", "36.64416")
    assert fill.fee.model_dump() == {"amount": "0.03664416", "currency": "USDT"}
    assert fill.fee_value.model_dump() == {"amount": "0.03664416", "currency": "USDT"}
    assert json.loads(json.dumps(out.to_json()))["decisions"][0]["orders"][0]["fills"][0]["fee"]["currency"] == "USDT"


def test_the_reproduction_recomputes_the_same_signal(trader):
    user, _ = trader
    first = analyse(user, until=BUY_BAR)
    reproduce = explained(first.analysis.id, user.id).input.reproduce

    again = analyse(user, signals=reproduce.signals, until=datetime.fromisoformat(reproduce.until))

    assert again.analysis.signal == first.analysis.signal and again.analysis.bar_time == BUY_BAR


def test_a_models_analysis_shows_what_is_stored_of_its_request(app):
    user = factories.user(db.session)
    watch = factories.watch(db.session, user, signal_source="deepseek:deepseek-chat")
    analysis = factories.analysis(
        db.session,
        user,
        watch_id=watch.id,
        signal_source="deepseek:deepseek-chat",
        provider="deepseek",
        model="deepseek-chat",
        prompt_version="p3",
        schema_version="s2",
        cache_key=KEY,
        input_tokens=1200,
        output_tokens=150,
        cost_usd=Decimal("0.00042"),
        latency_ms=900,
        raw_response=json.dumps(['{"action": "HOLD"}']),
    )
    db.session.add(
        ResponseCacheEntry(
            key=KEY,
            provider="deepseek",
            model="deepseek-chat",
            prompt_version="p3",
            schema_version="s2",
            arguments={"action": "HOLD"},
            raw='{"action": "HOLD"}',
            cost_usd=Decimal("0.00042"),
        )
    )
    db.session.add(
        WatchRun(
            watch_id=watch.id,
            bar_time=analysis.bar_time,
            trigger="schedule",
            status=RunStatus.SUCCEEDED,
            steps=[{"step": "signal", "ms": 900.0, "outcome": "ok"}],
            analysis_id=analysis.id,
        )
    )
    db.session.commit()

    out = explained(analysis.id, user.id)

    assert out.input.note.startswith("The prompt is not stored.") and KEY in out.input.note
    assert out.input.cache_entry.arguments == {"action": "HOLD"} and out.input.cache_entry.cost.amount == "0.00042"
    assert out.input.reproduce.signals == "replay:deepseek:deepseek-chat"
    assert out.input.reproduce.expected_cache_key == KEY
    assert out.raw_responses == ['{"action": "HOLD"}']
    assert out.cost.cost.model_dump() == {"amount": "0.00042", "currency": "USD"}
    assert (out.cost.usage.input_tokens, out.cost.usage.output_tokens, out.cost.latency_ms) == (1200, 150, 900)
    assert out.decisions == []
    [run] = out.runs
    assert (run.watch_id, run.status, run.steps[0]["step"]) == (watch.id, "succeeded", "signal")


def test_an_analysis_that_never_reached_a_model_says_so(app):
    user = factories.user(db.session)
    analysis = factories.analysis(
        db.session,
        user,
        provider="deepseek",
        model="deepseek-chat",
        status=AnalysisStatus.REFUSED,
        error_code="BUDGET_EXCEEDED",
    )
    db.session.commit()
    assert "No request was sent to a model" in explained(analysis.id, user.id).input.note


def test_someone_elses_analysis_is_not_found(app):
    owner, other = factories.user(db.session), factories.user(db.session)
    analysis = factories.analysis(db.session, owner)
    db.session.commit()

    with pytest.raises(NotFoundError) as caught:
        explain_analysis(db.session, analysis.id, other.id)
    assert (caught.value.field, caught.value.message) == ("analysis_id", f"no analysis #{analysis.id}")
    with pytest.raises(NotFoundError):
        explain_analysis(db.session, analysis.id + 1000, owner.id)
