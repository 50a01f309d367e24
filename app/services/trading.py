"""From a signal to money moving: risk decision, order placement exactly once, fills, positions, audit trail.

The risk manager decides; only an approved decision with `execute=True` reaches an exchange. Every step is
recorded: the decision with its coded reasons, the order before it is sent (so a crash in between can be
reconciled), its fills, the position, the account's balance, and an audit event. Open positions are kept up to date
bar by bar first (`app.services.upkeep`), on the account's own clock.
"""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ai.signal import Signal
from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, AccountKind, Analysis, Decision, Order, Trade
from app.persistence.account_book import open_positions
from app.services import Clock, audit, kill_switch, notifications, system_clock
from app.services.account_lock import account_lock
from app.services.exchanges import account_exchange
from app.services.orders import place_order
from app.services.reconciliation import look_up_unsettled_orders, settle_orders, unsettled_order_ids
from app.services.upkeep import BarSource, StepClock, open_position_of, walk_positions
from exchanges.base import Exchange, ExchangeError, OrderRequest
from exchanges.book import AccountBook
from exchanges.candles import Candle
from exchanges.execution import client_order_id_for
from exchanges.orders import OrderSide, OrderType
from risk import (
    AccountState,
    MarketLimits,
    OrderSpec,
    Reason,
    RiskConfig,
    decide,
    next_trading_state,
)
from risk.values import Decision as Verdict


@dataclass
class TradeResult:
    decision: Decision
    order: Order | None
    notes: list[str]  # trading-state changes, stop exits, dust and refused exits that happened on the way


ORDER_UNSETTLED = "ORDER_UNSETTLED"  # the reason code of an order refused while an earlier one is unsettled


class AccountClockError(InvalidInputError):
    """Trading at a bar before the account's clock: the account has already processed later bars."""

    code = "ACCOUNT_CLOCK"


def check_account_clock(account: Account, bar_close: datetime, execute: bool) -> None:
    """Raise `AccountClockError` (field `until`) when `execute` asks to trade at a bar that closed before the last
    bar the account processed: an account's clock only moves forward."""
    if execute and account.last_bar_at is not None and bar_close < account.last_bar_at:
        raise AccountClockError(
            f"account #{account.id} ({account.name}) has already traded up to the bar closing "
            f"{account.last_bar_at:%Y-%m-%d %H:%M} UTC; it cannot execute at the earlier bar closing "
            f"{bar_close:%Y-%m-%d %H:%M} UTC (analyse without execute to see the advice)",
            field="until",
            details={"value": bar_close.isoformat(), "account_clock": account.last_bar_at.isoformat()},
        )


def decide_and_execute(
    session: Session,
    settings: Settings,
    account: Account,
    analysis: Analysis,
    signal: Signal,
    bar: Candle,
    bar_duration: timedelta,
    bars: BarSource,
    execute: bool,
    clock: Clock = system_clock,
    *,
    advise_if_behind: bool = False,
) -> TradeResult:
    """Judge `signal` for `account` at the analysed `bar` (prices in the quote currency) and, if approved and
    `execute`, place the order.

    First, upkeep walks every bar since the account's clock up to this one (`bars` serves them) for every open
    position, and the clock moves to this bar's close. The step's time is that close on a paper account (so
    cooldowns and the daily loss limit follow bar time, and fills are stamped with it) and `clock()` on a live one.
    At a bar before the account's clock, `execute` raises `AccountClockError` (with `advise_if_behind`, as a
    scheduled run asks, the signal is judged as advice instead); without it the advice is given and nothing about
    the account changes.

    Commits at every step that must survive a crash: stop changes and trading-state switches, the decision, the
    order row before it is sent, and its fills once known. Exchange failures never raise: a refused order is
    recorded as REJECTED with its code, an unresolved one stays PENDING for reconciliation.

    Executing holds the account's trading lock (`app.services.account_lock`; `AccountBusyError` when another step
    keeps it too long) and first settles the account's PENDING and OPEN orders with the exchange: an order whose
    sender died (a killed scheduler or worker) is recorded as the exchange has it before anything is decided, and
    while one cannot be settled no new order is sent (`ORDER_UNSETTLED`).
    """
    bar_close = bar.open_time + bar_duration
    if not advise_if_behind:
        check_account_clock(account, bar_close, execute)
    if not execute or _behind(account, bar_close):
        return _decide_and_execute(session, settings, account, analysis, signal, bar, bar_duration, bars, False, clock)
    with account_lock(session, account):
        # The previous holder may have moved the clock on: refused, or (a scheduled run) advice only.
        if not advise_if_behind:
            check_account_clock(account, bar_close, execute)
        execute = not _behind(account, bar_close)
        return _decide_and_execute(
            session, settings, account, analysis, signal, bar, bar_duration, bars, execute, clock
        )


def _behind(account: Account, bar_close: datetime) -> bool:
    return account.last_bar_at is not None and bar_close < account.last_bar_at


def _decide_and_execute(
    session: Session,
    settings: Settings,
    account: Account,
    analysis: Analysis,
    signal: Signal,
    bar: Candle,
    bar_duration: timedelta,
    bars: BarSource,
    execute: bool,
    clock: Clock,
) -> TradeResult:
    bar_close = bar.open_time + bar_duration
    behind = _behind(account, bar_close)
    # Advice changes nothing: positions are kept, exits sent and the clock moved only when trading is executed.
    advice_only = behind or not execute
    step_clock = StepClock(bar_close)
    prices = {analysis.symbol: bar.close}
    exchange, book = account_exchange(session, settings, account, prices.__getitem__, step_clock)
    rules = exchange.market_rules(analysis.symbol)
    limits = MarketLimits.of(rules, rules.taker_fee)
    config = RiskConfig.from_overrides(account.risk_settings)
    unsettled: dict[str, str] = {}
    if behind:
        notes = [f"the account's clock is at {account.last_bar_at:%Y-%m-%d %H:%M} UTC: advice only, nothing updated"]
    elif advice_only:
        held = open_positions(session, account.id)
        notes = (
            [f"advice only: open positions ({', '.join(row.symbol for row in held)}) are kept up to date with execute"]
            if held
            else []
        )
    else:
        notes, unsettled = _settle_unsettled_orders(session, account, exchange, book)
        notes += walk_positions(
            session, account, exchange, book, config, bars, bar_duration, bar_close, step_clock, prices
        )
    prices[analysis.symbol] = bar.close
    now = bar_close if account.kind is AccountKind.PAPER else clock()
    step_clock.at = now
    state = _account_state(session, account, book, prices, now)
    if not advice_only:
        notes += _apply_trading_state(session, account, state, config, now)
    state = replace(state, trading_state=account.trading_state)

    verdict = decide(signal, state, limits, config, now, bar.close)
    # The operator's global kill switch refuses openings only: exits, stops and take profits above still run.
    refusal = kill_switch.opening_refusal(session) if signal.action.value == "BUY" else None
    if refusal is None and unsettled and verdict.approved:
        refusal = Reason(
            ORDER_UNSETTLED,
            f"{'; '.join(unsettled.values())}: no new order until it is settled (reconcile settles it)",
            {"orders": ", ".join(unsettled)},
        )
    if refusal is not None:
        verdict = Verdict(approved=False, order=None, reasons=(refusal,))
    decision = Decision(
        analysis_id=analysis.id,
        account_id=account.id,
        approved=verdict.approved,
        reasons=[_reason_json(r) for r in verdict.reasons],
        order_spec=_order_json(verdict.order) if verdict.order else None,
        created_at=clock(),
    )
    session.add(decision)
    session.commit()
    order = None
    if verdict.approved and execute:
        spec = verdict.order
        assert spec is not None  # Decision guarantees it: an approved decision always carries its order
        order = place_order(
            session,
            account,
            exchange,
            book,
            OrderRequest(
                spec.symbol,
                OrderSide(spec.side),
                OrderType.MARKET,
                spec.quantity,
                client_order_id_for(decision.id, account.id),
            ),
            decision_id=decision.id,
            stop_loss=spec.stop_loss,
            take_profit=spec.take_profit,
            prices=prices,
        )
    return TradeResult(decision, order, notes)


def _settle_unsettled_orders(
    session: Session, account: Account, exchange: Exchange, book: AccountBook
) -> tuple[list[str], dict[str, str]]:
    """Settle the account's PENDING and OPEN orders with the exchange (as `reconcile` does), each difference
    audited. Returns (notes, {client order id: why} of the orders still unsettled). Commits."""
    try:
        # One look: the account is locked meanwhile, and the next bar (or `reconcile`, which retries) looks again.
        looked_up = look_up_unsettled_orders(session, account, exchange, attempts=1)
    except ExchangeError as error:
        session.rollback()
        waiting = unsettled_order_ids(session, account.id)
        return [], {
            order_id: f"order {order_id} could not be checked on {exchange.id} ({error})" for order_id in waiting
        }
    differences = settle_orders(session, account, exchange, book, looked_up)
    for difference in differences:
        audit.for_account(session, account, "reconcile.difference", difference)
    session.commit()
    waiting = unsettled_order_ids(session, account.id)
    return [f"settled before trading: {difference}" for difference in differences], {
        order_id: f"order {order_id} is not settled on {exchange.id} yet" for order_id in waiting
    }


def _account_state(
    session: Session, account: Account, book: AccountBook, prices: dict[str, Decimal], now: datetime
) -> AccountState:
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # Only what had happened by `now`: advice at a bar before the account's clock must not see later losses.
    so_far = (Trade.account_id == account.id, Trade.executed_at <= now)
    realized_today = session.scalar(
        select(func.coalesce(func.sum(Trade.realized_pnl), 0)).where(*so_far, Trade.executed_at >= day_start)
    )
    last_loss_at = session.scalar(select(func.max(Trade.executed_at)).where(*so_far, Trade.realized_pnl < 0))
    rows = open_positions(session, account.id)
    equity = book.equity(prices)
    return AccountState(
        equity=equity,
        free_quote=book.cash,
        open_positions=tuple(open_position_of(row) for row in rows),
        realized_pnl_today=Decimal(str(realized_today)),
        peak_equity=max(account.peak_equity, equity),
        trading_state=account.trading_state,
        last_loss_at=last_loss_at,
        currency=account.quote_currency,
    )


def _apply_trading_state(
    session: Session, account: Account, state: AccountState, config: RiskConfig, now: datetime
) -> list[str]:
    """The daily loss limit and the drawdown kill switch flip the account's trading state."""
    target, reason = next_trading_state(state, config, now)
    if target is account.trading_state or reason is None:
        return []
    account.trading_state = target
    audit.for_account(session, account, "account.trading_state", f"{target.value}: {reason}")
    notifications.notify(
        session,
        account.user_id,
        "account.trading_state",
        {"account_id": account.id, "trading_state": target.value, "message": f"{target.value}: {reason}"},
    )
    session.commit()
    return [f"trading state -> {target.value}: {reason}"]


def _reason_json(reason: Reason) -> dict[str, Any]:
    return {"code": str(reason.code), "message": reason.message, "values": reason.values}


def _order_json(spec: OrderSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "side": spec.side,
        "quantity": str(spec.quantity),
        "order_type": spec.order_type,
        "stop_loss": str(spec.stop_loss) if spec.stop_loss is not None else None,
        "take_profit": str(spec.take_profit) if spec.take_profit is not None else None,
        "reference_price": str(spec.reference_price),
        "notional": str(spec.notional),
        "risk_amount": str(spec.risk_amount),
    }
