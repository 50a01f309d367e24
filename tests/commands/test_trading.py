"""Risk and execution through `analyze --account ID --execute` on SQLite and PostgreSQL: paper and live (ccxt
against recorded Binance responses), stops, refusals with coded reasons; risk settings and live keys through
`account`. Reconciliation is tested at its service, in tests/services/test_reconciliation.py."""

import json
import re
from decimal import Decimal

import pytest
import responses
from sqlalchemy import select

from app import current_settings
from app.extensions import db
from app.models import (
    Account,
    AuditEvent,
    Decision,
    ExchangeCredential,
    Order,
    Position,
    PositionStatus,
    Trade,
)
from exchanges.orders import OrderSide
from exchanges.vault import CredentialVault
from tests import factories
from tests.conftest import PROJECT_ROOT

RECORDINGS = PROJECT_ROOT / "tests" / "recordings" / "binance"
ORDER_URL = re.compile(r"https://api\.binance\.com/api/v3/order(\?.*)?$")
# rsi_reversion on BTC/USDT 1h: a BUY at 16:00 (entry 43,624.00, stop 42,434.55); at 15:00 its confidence is 54.
BUY_BAR, WEAK_BUY_BAR, STOP_BAR = "2024-01-12 16:00", "2024-01-12 15:00", "2024-01-12 22:00"


def recording(name):
    return json.loads((RECORDINGS / name).read_text())


@pytest.fixture
def trader(app):
    user = factories.user(db.session, email="trader@example.com", display_name="Trader")
    paper = factories.paper_account(db.session, user, name="Paper")
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    return user, paper


def live_account(user):
    account = factories.live_account(db.session, user, name="Live", label="main")
    db.session.commit()
    return account


def analyze(runner, account, until, *extra):
    result = runner.invoke(
        args=[
            "analyze",
            "BTC/USDT",
            "--signals",
            "rules:rsi_reversion",
            "--account",
            str(account.id),
            "--until",
            until,
            "--json",
            *extra,
        ]
    )
    assert result.output.strip().startswith("{"), result.output
    return result, json.loads(result.output)


def test_an_approved_buy_is_executed_on_paper_and_recorded(runner, trader):
    _, paper = trader
    result, payload = analyze(runner, paper, BUY_BAR, "--execute")
    assert result.exit_code == 0
    decision = payload["decision"]
    assert decision["approved"] is True
    assert [r["code"] for r in decision["reasons"]][:2] == ["APPROVED", "SIZED"]
    # 1% of 100 USDT = 1.00 at risk over a 1,189.45 stop distance = 0.000840... -> 0.00084 BTC = 36.64 USDT
    assert decision["order_spec"]["quantity"] == "0.00084"
    assert decision["order"]["status"] == "closed"

    db.session.expire_all()
    order = db.session.scalars(select(Order)).one()
    assert order.client_order_id == f"sh{paper.id}d{decision['id']}"
    assert (order.filled_quantity, order.average_fill_price) == (Decimal("0.00084"), Decimal("43624"))
    fee = Decimal("0.00084") * Decimal("43624") * Decimal("0.001")
    assert order.fee == fee
    account = db.session.get(Account, paper.id)
    assert account.current_balance == Decimal(100) - Decimal("36.64416") - fee
    position = db.session.scalars(select(Position)).one()
    assert (position.status, position.quantity, position.stop_loss) == (
        PositionStatus.OPEN,
        Decimal("0.00084"),
        Decimal("42434.55"),
    )
    assert position.cost_basis == Decimal("36.64416") + fee
    trade = db.session.scalars(select(Trade)).one()
    assert (trade.side, trade.order_id, trade.position_id) == (OrderSide.BUY, order.id, position.id)
    assert "order.filled" in [e.event for e in db.session.scalars(select(AuditEvent))]


def test_an_approved_decision_is_not_executed_without_execute(runner, trader):
    _, paper = trader
    result = runner.invoke(
        args=["analyze", "BTC/USDT", "--signals", "rules:rsi_reversion", "--account", str(paper.id), "--until", BUY_BAR]
    )
    assert result.exit_code == 0
    assert "APPROVED" in result.output and "not executed: add --execute to place the order" in result.output
    assert db.session.scalars(select(Order)).all() == []
    assert db.session.scalars(select(Decision)).one().approved is True


def test_a_refusal_carries_its_coded_reason_and_places_nothing(runner, trader):
    _, paper = trader
    _, payload = analyze(runner, paper, WEAK_BUY_BAR, "--execute")
    assert payload["decision"]["approved"] is False
    [reason] = payload["decision"]["reasons"]
    assert (reason["code"], reason["message"]) == ("CONFIDENCE_BELOW_MIN", "confidence 54 < 55")
    assert payload["decision"]["order"] is None
    assert db.session.scalars(select(Order)).all() == []


def test_execute_needs_an_account(runner, trader):
    result = runner.invoke(args=["analyze", "BTC/USDT", "--signals", "rules:rsi_reversion", "--execute"])
    assert result.exit_code == 1
    assert "execute needs an account: orders go to one named account [--execute]" in result.output


def test_the_stop_closes_the_position_on_the_bar_that_hits_it(runner, trader):
    _, paper = trader
    analyze(runner, paper, BUY_BAR, "--execute")
    _, payload = analyze(runner, paper, STOP_BAR, "--execute")
    assert any("STOP_HIT" in note for note in payload["decision"]["notes"])
    db.session.expire_all()
    position = db.session.scalars(select(Position)).one()
    assert position.status is PositionStatus.CLOSED
    sell = db.session.scalars(select(Trade).where(Trade.side == OrderSide.SELL)).one()
    assert sell.price == Decimal("42434.55")  # filled at the stop
    buy_fee = Decimal("0.00084") * Decimal("43624") * Decimal("0.001")
    sell_fee = Decimal("0.00084") * Decimal("42434.55") * Decimal("0.001")
    expected = (Decimal("42434.55") - Decimal("43624")) * Decimal("0.00084") - buy_fee - sell_fee
    assert abs(sell.realized_pnl - expected) <= Decimal("1e-9")
    assert db.session.get(Account, paper.id).current_balance == Decimal(100) + sell.realized_pnl


@responses.activate
def test_live_order_goes_to_binance_once_and_its_fill_is_recorded(runner, trader):
    user, _ = trader
    account = live_account(user)
    body = recording("order_create_full_market_buy.json")

    def create(request):
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        params = dict(pair.split("=") for pair in raw.split("&"))
        body.update(
            clientOrderId=params["newClientOrderId"],
            origQty="0.00084000",
            executedQty="0.00084000",
            cummulativeQuoteQty="36.64920000",
        )
        body["fills"] = [{"price": "43630.00", "qty": "0.00084", "commission": "0.00000084", "commissionAsset": "BTC"}]
        return 200, {}, json.dumps(body)

    responses.add_callback(responses.POST, ORDER_URL, callback=create)
    result, payload = analyze(runner, account, BUY_BAR, "--execute")
    assert result.exit_code == 0, result.output
    assert payload["decision"]["order"]["status"] == "closed"
    [call] = [c for c in responses.calls if c.request.method == "POST"]
    assert call.request.headers["X-MBX-APIKEY"] == "live-api-key-0123456789"
    db.session.expire_all()
    position = db.session.scalars(select(Position).where(Position.account_id == account.id)).one()
    # Binance took the fee in BTC: the account holds 0.00084 - 0.00000084 BTC.
    assert position.quantity == Decimal("0.00083916")
    assert db.session.get(Account, account.id).current_balance == Decimal(100) - Decimal("0.00084") * Decimal("43630")
    assert "live-secret-9876543210" not in result.output


@responses.activate
def test_insufficient_funds_on_binance_is_recorded_not_retried(runner, trader):
    user, _ = trader
    account = live_account(user)
    responses.post(ORDER_URL, status=400, json=recording("errors/insufficient_balance_400.json"))
    _, payload = analyze(runner, account, BUY_BAR, "--execute")
    order = payload["decision"]["order"]
    assert (order["status"], order["error_code"]) == ("rejected", "INSUFFICIENT_FUNDS")
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 1
    assert db.session.scalars(select(Position)).all() == []
    assert "order.rejected" in [e.event for e in db.session.scalars(select(AuditEvent))]


def test_risk_settings_are_validated_before_they_are_saved(runner, trader):
    _, paper = trader
    changed = runner.invoke(args=["account", "risk", str(paper.id), "--set", "risk_per_trade_pct=2"])
    assert changed.exit_code == 0 and "* risk_per_trade_pct       2" in changed.output
    refused = runner.invoke(args=["account", "risk", str(paper.id), "--set", "risk_per_trade_pct=50"])
    assert refused.exit_code == 1 and "risk_per_trade_pct" in refused.output
    db.session.expire_all()
    assert db.session.get(Account, paper.id).risk_settings == {"risk_per_trade_pct": "2"}


def test_add_live_stores_keys_encrypted_and_never_prints_them(runner, trader):
    result = runner.invoke(
        args=["account", "add-live", "--name", "Binance main"], input="my-api-key-123456\nmy-secret-abcdef\n\n"
    )
    assert result.exit_code == 0, result.output
    assert "with key my******3456" in result.output
    assert "my-secret-abcdef" not in result.output
    credential = db.session.scalars(select(ExchangeCredential)).one()
    assert "my-api-key" not in credential.api_key_encrypted
    vault = CredentialVault(current_settings().encryption_keys)
    assert vault.decrypt(credential.api_secret_encrypted) == "my-secret-abcdef"
    assert credential.passphrase_encrypted is None


def test_add_live_with_a_base_url_stores_it_and_lists_it(runner, trader):
    result = runner.invoke(
        args=["account", "add-live", "--name", "Via GCP", "--base-url", "https://api-gcp.binance.com/"],
        input="my-api-key-123456\nmy-secret-abcdef\n\n",
    )
    assert result.exit_code == 0, result.output
    assert "on binance via https://api-gcp.binance.com with key my******3456" in result.output
    account = db.session.scalars(select(Account).where(Account.name == "Via GCP")).one()
    assert account.exchange_base_url == "https://api-gcp.binance.com"
    listed = runner.invoke(args=["account", "list"])
    assert f"#{account.id}  Via GCP  live on binance via https://api-gcp.binance.com  " in listed.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://api.binance.com",
            'exchange_base_url must use https (plain http only to 127.0.0.1 or localhost), got "http://api.binance.com"',
        ),
        (
            "https://me:hunter2@api.binance.com",
            'exchange_base_url must not carry credentials (user:password@), got "https://***@api.binance.com"',
        ),
    ],
)
def test_an_unacceptable_base_url_is_one_line_naming_the_field_and_nothing_is_stored(runner, trader, url, expected):
    result = runner.invoke(
        args=[
            *("account", "add-live", "--name", "Bad URL", "--base-url", url),
            *("--api-key", "my-api-key-123456", "--api-secret", "secret", "--passphrase", ""),
        ]
    )
    assert result.exit_code == 1
    assert result.output == f"Error: {expected} [--base-url]\n"
    assert db.session.scalars(select(ExchangeCredential)).all() == []


def test_a_live_accounts_base_url_can_be_changed_and_cleared_and_its_orders_go_there(runner, trader):
    user, paper = trader
    account = live_account(user)
    changed = runner.invoke(args=["account", "base-url", str(account.id), "https://api1.binance.com"])
    assert changed.output == f"account #{account.id} talks to https://api1.binance.com\n"

    with responses.RequestsMock() as mocked:
        mocked.post(
            "https://api1.binance.com/api/v3/order", status=400, json=recording("errors/insufficient_balance_400.json")
        )
        _, payload = analyze(runner, account, BUY_BAR, "--execute")
        assert payload["decision"]["order"]["error_code"] == "INSUFFICIENT_FUNDS"
        assert len(mocked.calls) == 1

    cleared = runner.invoke(args=["account", "base-url", str(account.id), "--clear"])
    assert cleared.output == f"account #{account.id} talks to binance (default URLs)\n"
    db.session.expire_all()
    assert db.session.get(Account, account.id).exchange_base_url is None
    events = [
        e.message for e in db.session.scalars(select(AuditEvent).where(AuditEvent.event == "account.exchange_base_url"))
    ]
    assert events == [
        "exchange base URL set to https://api1.binance.com",
        "exchange base URL set to the default of binance",
    ]

    refused = runner.invoke(args=["account", "base-url", str(paper.id), "https://api1.binance.com"])
    assert refused.exit_code == 1 and "is a paper account" in refused.output and "[ACCOUNT_ID]" in refused.output
    neither = runner.invoke(args=["account", "base-url", str(account.id)])
    assert neither.exit_code == 1 and "give either a URL or --clear" in neither.output
