"""Every model round-trips on SQLite and PostgreSQL: Decimal money, UTC times, JSON, constraints."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from app.extensions import db
from app.models import (
    Account,
    AccountKind,
    Analysis,
    AnalysisStatus,
    ApiKey,
    AuditEvent,
    Backtest,
    BudgetLedgerEntry,
    Candle,
    Decision,
    ExchangeCredential,
    LedgerStatus,
    LlmCredential,
    Order,
    Position,
    PositionStatus,
    Trade,
    User,
    Watch,
)
from exchanges.orders import OrderSide, OrderStatus, OrderType
from exchanges.vault import CredentialVault, generate_key
from risk.states import TradingState
from tests import factories

WHEN = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)


def make_user(email="trader@example.com") -> User:
    return factories.user(db.session, email=email, password="correct horse battery staple", display_name="Trader")


def make_account(user: User, **fields) -> Account:
    return factories.paper_account(db.session, user, name="Paper", **fields)


def reload(model, key):
    """Read the row back from the database, not from the session's memory."""
    db.session.expire_all()
    return db.session.get(model, key)


def test_full_graph_round_trips_with_exact_decimals_and_utc_times(app):
    vault = CredentialVault([generate_key()])
    user = make_user()
    credential = factories.exchange_credential(
        db.session, user, api_key="binance-api-key-1234", api_secret="binance-secret-5678", vault=vault, label="main"
    )
    db.session.add_all(
        [
            ApiKey(user_id=user.id, name="script", prefix="sh_ab12", key_hash="f" * 64),
            LlmCredential(
                user_id=user.id, provider="deepseek", api_key_encrypted=vault.encrypt("sk-x"), api_key_hint="**"
            ),
        ]
    )
    db.session.flush()
    account = factories.live_account(
        db.session,
        user,
        credential=credential,
        name="Live",
        current_balance=Decimal("100.12345678"),
        risk_settings={"risk_per_trade_pct": "1", "symbols": ["BTC/USDT"]},
    )
    watch = factories.watch(
        db.session,
        user,
        account,
        signal_source="deepseek:deepseek-flash",
        max_cost_per_call_usd=Decimal("0.002"),
        next_run_at=WHEN,
    )
    analysis = factories.analysis(
        db.session,
        user,
        account,
        watch_id=watch.id,
        bar_time=WHEN,
        signal_source="deepseek",
        provider="deepseek",
        model="deepseek-flash",
        status=AnalysisStatus.OK,
        input_tokens=1200,
        cache_read_tokens=1000,
        output_tokens=150,
        cost_usd=Decimal("0.0000031234"),
        latency_ms=850,
        signal={"action": "BUY", "confidence": 72, "entry": "42000.5"},
    )
    decision = Decision(
        analysis_id=analysis.id,
        account_id=account.id,
        approved=True,
        reasons=[{"code": "APPROVED", "message": "risk 1.00 USDT", "values": {"risk": "1.00"}}],
        order_spec={"side": "buy", "quantity": "0.00119"},
    )
    db.session.add(decision)
    db.session.flush()
    order = Order(
        account_id=account.id,
        decision_id=decision.id,
        client_order_id="sh-1-1",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.00119"),
        stop_loss=Decimal("41000.01"),
    )
    position = Position(
        account_id=account.id, symbol="BTC/USDT", quantity=Decimal("0.00119"), entry_price=Decimal("42000.5")
    )
    db.session.add_all([order, position])
    db.session.flush()
    db.session.add_all(
        [
            Trade(
                account_id=account.id,
                order_id=order.id,
                position_id=position.id,
                symbol="BTC/USDT",
                side=OrderSide.BUY,
                quantity=Decimal("0.00119"),
                price=Decimal("42000.5"),
                fee=Decimal("0.0499806"),
                executed_at=WHEN,
            ),
            BudgetLedgerEntry(
                user_id=user.id,
                watch_id=watch.id,
                analysis_id=analysis.id,
                provider="deepseek",
                model="deepseek-flash",
                reserved_usd=Decimal("0.0004"),
                settled_usd=Decimal("0.0000031234"),
                status=LedgerStatus.SETTLED,
            ),
            Backtest(
                user_id=user.id,
                exchange_id="binance",
                symbol="BTC/USDT",
                timeframe="1h",
                signal_source="rules:sma_cross",
                signal_params={"fast": 10, "slow": 30},
                window_start=WHEN,
            ),
            AuditEvent(user_id=user.id, account_id=account.id, event="order.created", message="buy 0.00119 BTC"),
            Candle(
                exchange_id="binance",
                symbol="BTC/USDT",
                timeframe="1h",
                open_time=WHEN,
                open=Decimal("42000.5"),
                high=Decimal("42100"),
                low=Decimal("41900.25"),
                close=Decimal("42050"),
                volume=Decimal("12.3456789"),
            ),
        ]
    )
    db.session.commit()

    stored_account = reload(Account, account.id)
    assert stored_account.current_balance == Decimal("100.12345678")
    assert stored_account.kind is AccountKind.LIVE
    assert stored_account.trading_state is TradingState.ACTIVE
    assert stored_account.risk_settings == {"risk_per_trade_pct": "1", "symbols": ["BTC/USDT"]}
    assert stored_account.created_at.tzinfo is not None
    assert stored_account.created_at.utcoffset() == timedelta(0)

    stored_analysis = reload(Analysis, analysis.id)
    assert stored_analysis.cost_usd == Decimal("0.0000031234")
    assert stored_analysis.bar_time == WHEN
    assert stored_analysis.signal["action"] == "BUY"

    stored_order = reload(Order, order.id)
    assert stored_order.status is OrderStatus.PENDING
    assert stored_order.filled_quantity == 0
    assert stored_order.quantity == Decimal("0.00119")

    stored_credential = reload(ExchangeCredential, credential.id)
    assert vault.decrypt(stored_credential.api_secret_encrypted) == "binance-secret-5678"
    assert stored_credential.api_key_hint == "bi******1234"

    candle = db.session.scalars(select(Candle)).one()
    assert (candle.open_time, candle.volume, candle.low) == (WHEN, Decimal("12.3456789"), Decimal("41900.25"))
    assert reload(Watch, watch.id).next_run_at == WHEN
    assert db.session.scalars(select(Trade)).one().fee == Decimal("0.0499806")


def test_no_plaintext_secret_reaches_the_database(app):
    vault = CredentialVault([generate_key()])
    user = make_user()
    factories.exchange_credential(
        db.session, user, api_key="PLAINTEXT-API-KEY-abc123", api_secret="PLAINTEXT-SECRET-def456", vault=vault
    )
    db.session.commit()
    dump = str(db.session.execute(text("SELECT * FROM exchange_credentials")).all())
    assert "PLAINTEXT-API-KEY-abc123" not in dump
    assert "PLAINTEXT-SECRET-def456" not in dump


def test_times_in_other_zones_are_stored_as_utc(app):
    user = make_user()
    user.created_at = datetime(2024, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    db.session.commit()
    assert reload(User, user.id).created_at == WHEN
    assert reload(User, user.id).created_at.tzinfo == UTC


def test_naive_datetimes_are_refused(app):
    user = make_user()
    user.created_at = datetime(2024, 3, 1, 12, 30)
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.commit()


def test_only_one_open_position_per_account_and_symbol(app):
    account = make_account(make_user())

    def position(status):
        return Position(
            account_id=account.id, symbol="BTC/USDT", quantity=Decimal(1), entry_price=Decimal(1), status=status
        )

    db.session.add_all(
        [position(PositionStatus.CLOSED), position(PositionStatus.CLOSED), position(PositionStatus.OPEN)]
    )
    db.session.commit()
    db.session.add(position(PositionStatus.OPEN))
    with pytest.raises(IntegrityError):
        db.session.commit()


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"kind": AccountKind.LIVE}, "a live account needs exchange credentials"),
        ({"current_balance": Decimal("-0.01")}, "a balance cannot go negative"),
    ],
)
def test_account_constraints(app, fields, why):
    user = make_user()
    with pytest.raises(IntegrityError):
        make_account(user, **fields)
    db.session.rollback()


def test_enum_columns_reject_unknown_values_in_the_database(app):
    account = make_account(make_user())
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE accounts SET trading_state = 'YOLO' WHERE id = :id"), {"id": account.id})
        db.session.commit()


def test_deleting_a_user_removes_their_records(app):
    user = make_user()
    make_account(user)
    db.session.commit()
    db.session.delete(user)
    db.session.commit()
    assert db.session.scalar(select(Account.id)) is None
