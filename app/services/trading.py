"""From a signal to money moving: risk decision, order placement exactly once, fills, positions, audit trail.

The risk manager decides; only an approved decision with `execute=True` reaches an exchange. Every step is
recorded: the decision with its coded reasons, the order before it is sent (so a crash in between can be
reconciled), its fills, the position, the account's balance, and an audit event.
"""

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ai.signal import Signal
from app.config import Settings
from app.models import Account, Analysis, Decision, Order, Position, Trade
from app.persistence.account_book import open_position, open_positions, save_book
from app.services import Clock, audit, system_clock
from app.services.exchanges import account_exchange
from exchanges.base import Exchange, ExchangeError, OrderRequest, OrderState, PermanentExchangeError
from exchanges.book import AccountBook
from exchanges.execution import client_order_id_for, place_order_once
from exchanges.orders import OrderSide, OrderStatus, OrderType
from risk import (
    AccountState,
    MarketLimits,
    OpenPosition,
    OrderSpec,
    Reason,
    RiskConfig,
    decide,
    next_trading_state,
    update_stops,
)


@dataclass
class TradeResult:
    decision: Decision
    order: Order | None
    notes: list[str]  # trading-state changes and stop exits that happened on the way


def decide_and_execute(
    session: Session,
    settings: Settings,
    account: Account,
    analysis: Analysis,
    signal: Signal,
    bar: dict[str, Decimal],
    execute: bool,
    clock: Clock = system_clock,
) -> TradeResult:
    """Judge `signal` for `account` at the analysed bar (`bar`: open, high, low, close, in the quote currency) and,
    if approved and `execute`, place the order. Stops of an open position in the symbol are managed first, on the
    same bar.

    Commits at every step that must survive a crash: stop changes and trading-state switches, the decision, the
    order row before it is sent, and its fills once known. Exchange failures never raise: a refused order is
    recorded as REJECTED with its code, an unresolved one stays PENDING for reconciliation.
    """
    now = clock()
    last_price = bar["close"]
    # What the paper exchange fills at: the close, except for a stop exit, which fills at its own price.
    prices = {analysis.symbol: last_price}
    # One instant for the whole step: a stop exit filled "after" the decision's now would put a loss in the future
    # of the cooldown that judges the next signal.
    exchange, book = account_exchange(session, settings, account, prices.__getitem__, lambda: now)
    rules = exchange.market_rules(analysis.symbol)
    limits = MarketLimits.of(rules, rules.taker_fee)
    config = RiskConfig.from_overrides(account.risk_settings)
    notes = _manage_stops(session, account, exchange, book, limits, config, bar, prices)
    prices[analysis.symbol] = last_price
    state = _account_state(session, account, book, prices, now)
    notes += _apply_trading_state(session, account, state, config, now)
    state = replace(state, trading_state=account.trading_state)

    verdict = decide(signal, state, limits, config, now, last_price)
    decision = Decision(
        analysis_id=analysis.id,
        account_id=account.id,
        approved=verdict.approved,
        reasons=[_reason_json(r) for r in verdict.reasons],
        order_spec=_order_json(verdict.order) if verdict.order else None,
        created_at=now,
    )
    session.add(decision)
    session.commit()
    order = None
    if verdict.approved and execute:
        spec = verdict.order
        assert spec is not None  # Decision guarantees it: an approved decision always carries its order
        order = _place(
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


def _place(
    session: Session,
    account: Account,
    exchange: Exchange,
    book: AccountBook,
    request: OrderRequest,
    *,
    decision_id: int | None,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    prices: dict[str, Decimal],
) -> Order:
    order = Order(
        account_id=account.id,
        decision_id=decision_id,
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        order_type=request.order_type,
        status=OrderStatus.PENDING,
        quantity=request.amount,
        stop_loss=stop_loss,
        take_profit=take_profit,
    )
    session.add(order)
    session.commit()  # on record before it is sent: reconciliation can always find it
    fills_before = len(book.fills)
    try:
        state = place_order_once(exchange, request)
    except PermanentExchangeError as error:
        order.status, order.error_code, order.error_message = OrderStatus.REJECTED, error.code, str(error)
        _audit(session, account, "order.rejected", f"{request.side} {request.amount} {request.symbol}: {error}", order)
        session.commit()
        return order
    except ExchangeError as error:
        # Temporary trouble that outlasted the retries, or an unknown outcome: the order stays PENDING and
        # reconciliation settles it from what the exchange says.
        order.error_code, order.error_message = error.code, str(error)
        _audit(session, account, "order.unresolved", f"{request.client_order_id}: {error}", order)
        session.commit()
        return order
    _update_order(order, state)
    book.record_fill(state, exchange.market_rules(request.symbol))
    session.flush()
    save_book(session, account, book, book.fills[fills_before:], order)
    account.peak_equity = max(account.peak_equity, book.equity(prices))
    _audit(session, account, "order.filled", _fill_text(state), order)
    session.commit()
    return order


def _update_order(order: Order, state: OrderState) -> None:
    order.status = state.status
    order.exchange_order_id = state.exchange_order_id
    order.filled_quantity = state.filled
    order.average_fill_price = state.average_price
    order.fee = state.fee
    order.fee_currency = state.fee_currency


def _manage_stops(
    session: Session,
    account: Account,
    exchange: Exchange,
    book: AccountBook,
    limits: MarketLimits,
    config: RiskConfig,
    bar: dict[str, Decimal],
    prices: dict[str, Decimal],
) -> list[str]:
    """Trail the stop of an open position on this bar, and close it when its stop or take-profit was hit."""
    row = open_position(session, account.id, limits.symbol)
    if row is None:
        return []
    update = update_stops(_open_position(row), bar["high"], bar["low"], bar["close"], config, limits)
    row.highest_price, row.stop_loss = update.highest_price, update.stop_loss
    notes = [str(reason) for reason in update.reasons]
    for reason in update.reasons:
        _audit(session, account, f"position.{reason.code.lower()}", str(reason), None)
    session.commit()
    if update.exit_price is None or not update.exit_quantity:
        return notes
    quantity = update.exit_quantity
    prices[limits.symbol] = update.exit_price
    request = OrderRequest(
        limits.symbol, OrderSide.SELL, OrderType.MARKET, quantity, client_order_id_for(row.id, account.id, "exit")
    )
    order = _place(
        session,
        account,
        exchange,
        book,
        request,
        decision_id=None,
        stop_loss=None,
        take_profit=None,
        prices=prices,
    )
    notes.append(f"exit order {order.client_order_id}: {order.status.value}")
    return notes


def _account_state(
    session: Session, account: Account, book: AccountBook, prices: dict[str, Decimal], now: datetime
) -> AccountState:
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    realized_today = session.scalar(
        select(func.coalesce(func.sum(Trade.realized_pnl), 0)).where(
            Trade.account_id == account.id, Trade.executed_at >= day_start
        )
    )
    last_loss_at = session.scalar(
        select(func.max(Trade.executed_at)).where(Trade.account_id == account.id, Trade.realized_pnl < 0)
    )
    rows = open_positions(session, account.id)
    equity = book.equity(prices)
    return AccountState(
        equity=equity,
        free_quote=book.cash,
        open_positions=tuple(_open_position(row) for row in rows),
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
    _audit(session, account, "account.trading_state", f"{target.value}: {reason}", None)
    session.commit()
    return [f"trading state -> {target.value}: {reason}"]


def _open_position(row: Position) -> OpenPosition:
    return OpenPosition(
        symbol=row.symbol,
        quantity=row.quantity,
        entry_price=row.entry_price,
        stop_loss=row.stop_loss,
        take_profit=row.take_profit,
        highest_price=row.highest_price or row.entry_price,
    )


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


def _fill_text(state: OrderState) -> str:
    return (
        f"{state.side.value} {state.filled} {state.symbol} at {state.average_price} "
        f"(fee {state.fee} {state.fee_currency or ''}), {state.status.value}"
    )


def _audit(session: Session, account: Account, event: str, message: str, order: Order | None) -> None:
    details = {"client_order_id": order.client_order_id} if order is not None else {}
    audit.for_account(session, account, event, message, **details)
