"""`flask --app wsgi analyze` end to end on SQLite and PostgreSQL: candle store -> context -> real SDK against a
fake provider on 127.0.0.1 -> budget ledger -> response cache -> recorded Analysis."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses
from flask_migrate import upgrade
from sqlalchemy import select

from ai.pricing import call_cost
from ai.providers.base import Usage
from app import create_app, current_settings
from app.extensions import db
from app.models import Analysis, BudgetLedgerEntry, LedgerStatus, LlmCredential, User
from exchanges.vault import CredentialVault, mask_secret
from tests import factories
from tests.conftest import PROJECT_ROOT, clean_environ, make_empty_database
from tests.fakes.llm_servers import (
    answer,
    anthropic_server_fixture,  # noqa: F401
    anthropic_usage,
    deepseek_server_fixture,  # noqa: F401
    deepseek_usage,
    prose,
    unauthorized,
)

HOLD = {
    "action": "HOLD",
    "confidence": 40,
    "entry_price": None,
    "stop_loss": None,
    "take_profit": None,
    "horizon_bars": 6,
    "reasoning": "Mixed signals.",
    "key_factors": ["rsi 48", "macd flat"],
}
LAST_CLOSE = 56588  # the last 1h close in binance_BTCUSDT_1h_2024-01_2024-09.csv
BUY = {
    "action": "BUY",
    "confidence": 66,
    "entry_price": LAST_CLOSE,
    "stop_loss": 55500,
    "take_profit": 59000,
    "horizon_bars": 24,
    "reasoning": "Pullback into rising EMA50.",
    "key_factors": ["ema50 rising"],
}


@pytest.fixture
def make_app(empty_database, tmp_path, deepseek_server, anthropic_server):
    apps = []

    def build(database_url=empty_database):
        environ = clean_environ(
            tmp_path / f"instance{len(apps)}",
            database_url,
            DEEPSEEK_API_KEY="sk-test-deepseek-key-0001",
            DEEPSEEK_BASE_URL=deepseek_server.url,
            ANTHROPIC_API_KEY="sk-ant-test-key-0002",
            ANTHROPIC_BASE_URL=anthropic_server.url,
        )
        app = create_app(environ=environ)
        with app.app_context():
            upgrade()
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def seed(app, daily_budget=Decimal("1.00")):
    with app.app_context():
        user = factories.user(db.session, email="ai@example.com", display_name="AI user", daily_budget_usd=daily_budget)
        factories.paper_account(db.session, user, name="Paper")
        for name in ("binance_BTCUSDT_1h_2024-01_2024-09.csv", "binance_BTCUSDT_1d_2024-01_2024-09.csv"):
            factories.candles(db.session, name)
        db.session.commit()


def analyze(app, *args):
    result = app.test_cli_runner().invoke(args=["analyze", "BTC/USDT", "--timeframe", "1h", "--json", *args])
    payload = json.loads(result.output) if result.output.strip().startswith("{") else None
    return result, payload


def test_deepseek_signal_is_billed_recorded_and_then_served_from_the_cache(make_app, deepseek_server):
    app = make_app()
    seed(app)
    deepseek_server.queue(answer(BUY, usage=deepseek_usage(hit=900, miss=300, completion=120)))
    result, first = analyze(app, "--signals", "deepseek")
    assert result.exit_code == 0, result.output
    assert (first["status"], first["provider"], first["model"], first["cached"]) == (
        "ok",
        "deepseek",
        "deepseek-flash",
        False,
    )
    assert first["signal"]["action"] == "BUY"
    sent = deepseek_server.requests[0].body
    assert sent["model"] == "deepseek-flash"
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "trading_signal"}}
    assert sent["thinking"] == {"type": "disabled"}
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert "BTC/USDT" in sent["messages"][1]["content"]
    assert first["usage"] == {
        "input_tokens": 300,
        "cache_read_tokens": 900,
        "cache_write_tokens": 0,
        "output_tokens": 120,
        "reasoning_tokens": 0,
    }
    paid = Decimal(first["cost_usd"])
    assert paid > 0

    result, second = analyze(app, "--signals", "deepseek")
    assert result.exit_code == 0, result.output
    assert second["cached"] is True and Decimal(second["cost_usd"]) == 0
    assert Decimal(second["original_cost_usd"]) == paid
    assert second["signal"] == first["signal"]
    assert len(deepseek_server.requests) == 1

    with app.app_context():
        analyses = db.session.scalars(select(Analysis).order_by(Analysis.id)).all()
        assert [(a.cached, a.cost_usd, a.input_tokens) for a in analyses] == [(False, paid, 300), (True, 0, 300)]
        assert analyses[0].bar_time == datetime(2024, 9, 6, 3, tzinfo=UTC)
        [entry] = db.session.scalars(select(BudgetLedgerEntry)).all()
        assert (entry.status, entry.settled_usd, entry.analysis_id) == (LedgerStatus.SETTLED, paid, analyses[0].id)
        assert entry.reserved_usd >= paid


def test_the_cost_matches_the_price_table_for_the_time_of_the_call(make_app, deepseek_server):
    app = make_app()
    seed(app)
    deepseek_server.queue(answer(HOLD, usage=deepseek_usage(hit=1000, miss=200, completion=80)))
    before = datetime.now(UTC)
    _, payload = analyze(app, "--signals", "deepseek")
    usage = Usage(input_tokens=200, cache_read_tokens=1000, output_tokens=80)
    possible = {call_cost("deepseek", "deepseek-flash", usage, at) for at in (before, datetime.now(UTC))}
    assert Decimal(payload["cost_usd"]) in possible


def test_blind_mode_hides_ticker_and_dates_from_the_provider(make_app, deepseek_server):
    app = make_app()
    seed(app)
    deepseek_server.queue(answer(HOLD))
    result, _payload = analyze(app, "--signals", "deepseek", "--blind")
    assert result.exit_code == 0, result.output
    prompt = deepseek_server.requests[0].body["messages"][1]["content"]
    assert "BTC" not in prompt and "2024" not in prompt and "56588" not in prompt


def test_budget_refusal_calls_nothing_and_exits_non_zero(make_app, deepseek_server):
    app = make_app()
    seed(app)
    result, payload = analyze(app, "--signals", "deepseek", "--max-cost", "0.0000001")
    assert result.exit_code == 1
    assert payload["status"] == "refused"
    assert payload["reasons"][0]["code"] == "BUDGET_EXCEEDED"
    assert "per-request cap $0.000000" in payload["reasons"][0]["message"]
    assert deepseek_server.requests == []

    with app.app_context():  # now a daily cap of almost nothing
        db.session.execute(db.update(User).values(daily_budget_usd=Decimal("0.00001")))
        db.session.commit()
    result, payload = analyze(app, "--signals", "deepseek")
    assert result.exit_code == 1 and "daily cap $0.000010" in payload["reasons"][0]["message"]
    assert deepseek_server.requests == []


def test_prose_twice_becomes_a_recorded_hold(make_app, deepseek_server):
    app = make_app()
    seed(app)
    deepseek_server.queue(prose(), prose("Definitely buy!"))
    result, payload = analyze(app, "--signals", "deepseek")
    assert result.exit_code == 0, result.output
    assert payload["status"] == "invalid" and payload["signal"]["action"] == "HOLD"
    assert payload["reasons"][0]["code"] == "NO_TOOL_CALL"
    assert len(deepseek_server.requests) == 2
    with app.app_context():
        analysis = db.session.scalars(select(Analysis)).one()
        assert "Definitely buy!" in analysis.raw_response
        assert analysis.cost_usd > 0  # both calls were paid for


def test_claude_structured_output_through_the_cli(make_app, anthropic_server):
    app = make_app()
    seed(app)
    anthropic_server.queue(answer(HOLD, usage=anthropic_usage(uncached=100, cache_write=1100, cache_read=0, output=90)))
    result, payload = analyze(app, "--signals", "claude")
    assert result.exit_code == 0, result.output
    assert (payload["provider"], payload["model"], payload["status"]) == ("claude", "claude-haiku-5-5", "ok")
    assert payload["usage"]["cache_write_tokens"] == 1100
    sent = anthropic_server.requests[0]
    assert sent.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "temperature" not in sent.body


def test_fallback_from_a_failing_provider_to_rules(make_app, deepseek_server):
    app = make_app()
    seed(app)
    deepseek_server.queue(unauthorized())
    result, payload = analyze(app, "--signals", "deepseek -> rules:sma_cross")
    assert result.exit_code == 0, result.output
    assert payload["provider"] == "rules"
    assert [a["result"] for a in payload["attempts"]] == ["AUTH", "ok"]
    assert "sk-test-deepseek-key-0001" not in result.output


def test_exported_cache_replays_on_another_database_for_free(make_app, deepseek_server, tmp_path, backend):
    app = make_app()
    seed(app)
    deepseek_server.queue(answer(HOLD))
    analyze(app, "--signals", "deepseek")
    export = tmp_path / "cache.jsonl"
    assert app.test_cli_runner().invoke(args=["cache", "export", str(export)]).exit_code == 0
    assert len(export.read_text().splitlines()) == 1

    other_url, schema = make_empty_database(backend, tmp_path)
    try:
        other = make_app(other_url)
        seed(other)
        imported = other.test_cli_runner().invoke(args=["cache", "import", str(export)])
        assert "imported 1 new cached response(s)" in imported.output
        result, payload = analyze(other, "--signals", "replay:deepseek")
        assert result.exit_code == 0, result.output
        assert payload["cached"] is True and Decimal(payload["cost_usd"]) == 0
        assert len(deepseek_server.requests) == 1
        again = other.test_cli_runner().invoke(args=["cache", "import", str(export)])
        assert "imported 0 new cached response(s)" in again.output
    finally:
        if schema:
            with other.app_context():
                db.engine.dispose()
            schema.drop()


def test_replay_miss_is_reported_and_never_paid(make_app, deepseek_server):
    app = make_app()
    seed(app)
    result, payload = analyze(app, "--signals", "replay")
    assert result.exit_code == 1
    assert payload["reasons"][0]["code"] == "CACHE_MISS"
    assert deepseek_server.requests == []


def test_a_corrupt_cache_file_imports_nothing(make_app, tmp_path):
    app = make_app()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "abc"}\n')
    result = app.test_cli_runner().invoke(args=["cache", "import", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:1: not a cached response" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--signals", "gpt5"], "unknown signal source 'gpt5'"),
        (["--signals", "deepseek:deepseek-chat"], "deepseek-chat"),
        (["--signals", "rules:sma_cross", "--param", "fast=ten"], "fast"),
        (["--signals", "rules:sma_cross", "--param", "nonsense"], "is not KEY=VALUE"),
        (["--max-cost", "-1"], "must be a positive amount"),
        (["--market", "kraken"], 'market must be store, replay or ccxt:EXCHANGE, got "kraken"'),
        (["--account", "999"], "no account #999"),
    ],
)
def test_bad_input_is_named(make_app, args, message):
    app = make_app()
    seed(app)
    result, _ = analyze(app, *args)
    assert result.exit_code != 0
    assert message in result.output


def test_a_users_own_stored_key_overrides_the_service_key(make_app, deepseek_server):
    app = make_app()
    seed(app)
    with app.app_context():
        vault = CredentialVault(current_settings().encryption_keys)
        user = db.session.scalars(select(User)).one()
        db.session.add(
            LlmCredential(
                user_id=user.id,
                provider="deepseek",
                api_key_encrypted=vault.encrypt("sk-users-own-key-9999"),
                api_key_hint=mask_secret("sk-users-own-key-9999"),
            )
        )
        db.session.commit()
    deepseek_server.queue(answer(HOLD))
    result, _ = analyze(app, "--signals", "deepseek")
    assert result.exit_code == 0, result.output
    assert deepseek_server.requests[0].headers["authorization"] == "Bearer sk-users-own-key-9999"


@responses.activate
def test_live_public_candles_through_ccxt(make_app):
    app = make_app()
    seed(app)
    klines = json.loads((PROJECT_ROOT / "tests" / "recordings" / "binance_klines_BTCUSDT_1h.json").read_text())
    responses.get(re.compile(r"https://api\.binance\.com/api/v3/klines\?.*"), json=klines)
    responses.add_passthru(re.compile(r"http://127\.0\.0\.1:\d+/.*"))
    result, payload = analyze(app, "--signals", "rules:sma_cross", "--market", "ccxt:binance")
    assert result.exit_code == 0, result.output
    assert payload["bar_time"] == "2024-09-06T03:00:00+00:00"  # the recording's last closed candle
    assert "symbol=BTCUSDT" in responses.calls[0].request.url


HOURLY_GAP = (
    "the 300-bar 1h lookback spans a gap: 2021-06-10 00:00 -> 2023-12-31 23:00 UTC, 22,440 missing bars; "
    "indicators are computed across it"
)


def test_a_lookback_across_the_hole_in_the_data_is_warned_about_in_text_and_json(make_app, deepseek_server):
    app = make_app()
    seed(app)
    with app.app_context():
        for name in ("binance_BTCUSDT_1h_2017-08_2021-06.csv", "binance_BTCUSDT_1d_2017-08_2021-06.csv"):
            factories.candles(db.session, name)
        db.session.commit()
    runner = app.test_cli_runner()
    # 2024-01-03 00:00 is the 49th bar after the hole: the other 251 of the 300 bars come from before 2021-06-10.
    result = runner.invoke(args=["analyze", "BTC/USDT", "--signals", "rules:sma_cross", "--until", "2024-01-03"])
    assert result.exit_code == 0, result.output
    assert f"\n  warning: {HOURLY_GAP}\n" in result.output

    # A model also reads the daily lookback, which spans the same hole in 1d bars.
    deepseek_server.queue(answer(HOLD))
    result, payload = analyze(app, "--signals", "deepseek", "--until", "2024-01-03")
    assert result.exit_code == 0, result.output
    assert payload["warnings"] == [
        HOURLY_GAP,
        "the 220-bar 1d lookback spans a gap: 2021-06-11 00:00 -> 2023-12-31 00:00 UTC, 934 missing bars; "
        "indicators are computed across it",
    ]

    result, payload = analyze(app, "--signals", "rules:sma_cross")  # the latest bar: 300 hours of 2024 only
    assert result.exit_code == 0, result.output
    assert payload["warnings"] == []
