"""Position upkeep: every bar between an account's clock and a new bar, for every open position, in order.

An account keeps the close time of the last bar trading processed (`Account.last_bar_at`), and that clock only
moves forward. On each new bar, upkeep walks every bar since the clock: the stop is checked first, then the take
profit, and a trailing stop is moved bar by bar, all through the risk manager's `update_stops`; an exit goes
through the same order path as any order. Jumping months ahead therefore books the stop that was touched six hours
after entry, not the price of the day the account was next looked at.

Exits that cannot go through are never lost and never crash a step: a position whose exit the exchange refused, or
whose sellable part is below the market minimum, is marked exit-failed with a coded reason and retried on the next
bar with a new client order id; what no order could ever sell is closed as dust.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Account, Order, Position, PositionStatus
from app.persistence.account_book import open_positions, write_off_dust
from app.services import audit, notifications
from app.services.orders import place_order
from exchanges.base import Exchange, OrderRequest
from exchanges.book import AccountBook
from exchanges.candles import Candle
from exchanges.execution import exit_client_order_id
from exchanges.markets import MarketRules
from exchanges.orders import OrderSide, OrderStatus, OrderType
from risk import MarketLimits, OpenPosition, RiskConfig, update_stops
from risk.stops import exit_quantity
from risk.text import money, on_grid
from risk.values import Code

# (symbol, after, until) -> the closed candles of the walked timeframe whose close time is in (after, until], oldest
# first. UTC datetimes.
BarSource = Callable[[str, datetime, datetime], Sequence[Candle]]

EXIT_BELOW_MIN_NOTIONAL = "EXIT_BELOW_MIN_NOTIONAL"
EXIT_PARTLY_FILLED = "EXIT_PARTLY_FILLED"


@dataclass
class StepClock:
    """The instant fills are stamped with while upkeep walks: each walked bar's close, then the step's own time."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at


@dataclass
class _Walk:
    """One position's walk: the stop raises it saw (reported once, not per bar) and the notes for the user."""

    row: Position
    rules: MarketRules
    limits: MarketLimits
    first_stop: Decimal | None
    clock: StepClock
    raises: int = 0
    bars: int = 0
    notes: list[str] = field(default_factory=list)


def walk_positions(
    session: Session,
    account: Account,
    exchange: Exchange,
    book: AccountBook,
    config: RiskConfig,
    bars: BarSource,
    bar_duration: timedelta,
    until: datetime,
    clock: StepClock,
    prices: dict[str, Decimal],
) -> list[str]:
    """Apply every bar closed after the account's clock (or a position's opening) up to `until` to every open
    position, then move the clock to `until`. Returns notes for the user (stop hits, exits, dust, failures).

    `bars` yields candles of `bar_duration`; `prices` (quote currency per symbol) is where exits fill on the paper
    exchange, and `clock` stamps their fills with the bar's close. Commits after each position's walk and at every
    order step (see `place_order`). The caller must not pass an `until` before the account's clock: history already
    processed is never walked again.
    """
    notes: list[str] = []
    for row in open_positions(session, account.id):
        unsettled = _unsettled_exit(session, account.id, row.symbol)
        if unsettled is not None:
            notes.append(f"{row.symbol}: exit order {unsettled} is not settled yet; reconcile before it is retried")
            continue
        rules = exchange.market_rules(row.symbol)
        walk = _Walk(row, rules, MarketLimits.of(rules, rules.taker_fee), row.stop_loss, clock)
        start = row.opened_at if account.last_bar_at is None else max(account.last_bar_at, row.opened_at)
        for candle in bars(row.symbol, start, until):
            clock.at = candle.open_time + bar_duration
            if not _apply_bar(session, account, exchange, book, config, walk, candle, prices):
                break
        _report_raises(session, account, walk)
        notes += walk.notes
        session.commit()
    if account.last_bar_at is None or until > account.last_bar_at:
        account.last_bar_at = until
    clock.at = until
    session.commit()
    return notes


def _apply_bar(
    session: Session,
    account: Account,
    exchange: Exchange,
    book: AccountBook,
    config: RiskConfig,
    walk: _Walk,
    candle: Candle,
    prices: dict[str, Decimal],
) -> bool:
    """One bar for one position; False when the walk of this position is over (closed, or an exit was refused)."""
    row = walk.row
    walk.bars += 1
    if row.exit_error_code is None:
        update = update_stops(
            open_position_of(row), candle.high, candle.low, candle.close, config, walk.limits, open_=candle.open
        )
        row.highest_price, row.stop_loss = update.highest_price, update.stop_loss
        walk.raises += sum(1 for reason in update.reasons if reason.code is Code.STOP_RAISED)
        hit = update.exit_reason
        if update.exit_price is None or hit is None:
            return True
        message = f"{row.symbol}, bar opened {candle.open_time:%Y-%m-%d %H:%M} UTC: {hit}"
        audit.for_account(session, account, f"position.{hit.code.lower()}", message, position_id=row.id)
        notifications.notify(
            session,
            account.user_id,
            f"position.{hit.code.lower()}",
            {"account_id": account.id, "position_id": row.id, "symbol": row.symbol, "message": message},
        )
        walk.notes.append(message)
        exit_price = update.exit_price
    else:
        # An exit decided on an earlier bar did not go through: what can be sold is sold at this bar's close.
        exit_price = candle.close
    return _exit(session, account, exchange, book, walk, exit_price, prices)


def _exit(
    session: Session,
    account: Account,
    exchange: Exchange,
    book: AccountBook,
    walk: _Walk,
    price: Decimal,
    prices: dict[str, Decimal],
) -> bool:
    row, rules = walk.row, walk.rules
    quantity = exit_quantity(row.quantity, walk.limits)
    if quantity == 0 or quantity < rules.min_amount:
        return _close_as_dust(session, account, book, walk, price)
    if quantity * price < rules.min_notional:
        value, minimum = money(quantity * price, rules.min_notional)
        _exit_failed(
            session,
            account,
            walk,
            EXIT_BELOW_MIN_NOTIONAL,
            f"{on_grid(rules.amount_step, quantity)[0]} {rules.base} = {value} {rules.quote} at "
            f"{on_grid(rules.price_step, price)[0]} is below the {minimum} {rules.quote} minimum order: "
            "the exit waits for a higher price",
        )
        return True
    row.exit_attempts += 1
    prices[row.symbol] = price  # where the paper exchange fills a stop or take-profit exit: at its level
    # On record before the order is sent: after a crash the next attempt can never reuse this client order id.
    session.commit()
    client_order_id = exit_client_order_id(row.id, account.id, row.exit_attempts)
    request = OrderRequest(row.symbol, OrderSide.SELL, OrderType.MARKET, quantity, client_order_id)
    order = place_order(
        session, account, exchange, book, request, decision_id=None, stop_loss=None, take_profit=None, prices=prices
    )
    if order.status is OrderStatus.REJECTED:
        _exit_failed(session, account, walk, order.error_code or "EXIT_REJECTED", order.error_message or "")
        return False
    if order.status is OrderStatus.PENDING:
        walk.notes.append(f"{row.symbol}: exit order {order.client_order_id} unresolved; reconciliation settles it")
        return False
    if row.status is PositionStatus.OPEN:
        _exit_failed(
            session,
            account,
            walk,
            EXIT_PARTLY_FILLED,
            f"exit order {order.client_order_id} filled {order.filled_quantity} of {order.quantity} {rules.base}",
        )
        return False
    row.exit_error_code = row.exit_error_message = None
    sold, at = (
        on_grid(rules.amount_step, order.filled_quantity)[0],
        on_grid(rules.price_step, order.average_fill_price or price)[0],
    )
    walk.notes.append(
        f"{row.symbol}: exit order {order.client_order_id} {order.status.value}: sold {sold} {rules.base} at {at} "
        f"{rules.quote}, realized {row.realized_pnl:+.2f} {rules.quote}{_dust_text(row, rules)}"
    )
    session.commit()
    return False


def _close_as_dust(session: Session, account: Account, book: AccountBook, walk: _Walk, price: Decimal) -> bool:
    """Nothing of the position can be ordered (no whole amount step, or under the minimum amount): closed as dust."""
    row, rules = walk.row, walk.rules
    quantity, value, cost_basis = book.write_off_dust(row.symbol, price, rules)
    write_off_dust(row, quantity, value, cost_basis, walk.clock())
    message = (
        f"{row.symbol}: {on_grid(rules.amount_step, quantity)[0]} {rules.base} ({money(value)[0]} {rules.quote}) "
        "cannot be sold: closed as dust"
    )
    audit.for_account(session, account, "position.dust", message, position_id=row.id)
    walk.notes.append(message)
    session.commit()
    return False


def _exit_failed(session: Session, account: Account, walk: _Walk, code: str, message: str) -> None:
    """Mark the position exit-failed; the event is audited when the reason changes, not again on every bar."""
    row = walk.row
    if row.exit_error_code != code:
        audit.for_account(
            session, account, "position.exit_failed", f"{row.symbol}: {code}: {message}", position_id=row.id
        )
        walk.notes.append(f"{row.symbol}: exit failed ({code}): {message}; retried on the next bar")
    row.exit_error_code, row.exit_error_message = code, message
    session.commit()


def _report_raises(session: Session, account: Account, walk: _Walk) -> None:
    row = walk.row
    if not walk.raises:
        return
    step = walk.rules.price_step
    before = "none" if walk.first_stop is None else on_grid(step, walk.first_stop)[0]
    after = "none" if row.stop_loss is None else on_grid(step, row.stop_loss)[0]
    message = f"{row.symbol}: trailing stop raised {before} -> {after} {walk.rules.quote}" + (
        f" ({walk.raises} raises over {walk.bars} bars)" if walk.raises > 1 else ""
    )
    audit.for_account(session, account, "position.stop_raised", message, position_id=row.id)
    walk.notes.append(message)


def _unsettled_exit(session: Session, account_id: int, symbol: str) -> str | None:
    """The client order id of a sell in `symbol` still PENDING or OPEN: sending another could sell twice."""
    return session.scalar(
        select(Order.client_order_id).where(
            Order.account_id == account_id,
            Order.symbol == symbol,
            Order.side == OrderSide.SELL,
            Order.status.in_((OrderStatus.PENDING, OrderStatus.OPEN)),
        )
    )


def _dust_text(row: Position, rules: MarketRules) -> str:
    if not row.dust_quantity:
        return ""
    return f"; {row.dust_quantity.normalize()} {rules.base} dust left ({row.dust_value:.2f} {rules.quote}), written off"


def open_position_of(row: Position) -> OpenPosition:
    """The risk manager's view of a stored position."""
    return OpenPosition(
        symbol=row.symbol,
        quantity=row.quantity,
        entry_price=row.entry_price,
        stop_loss=row.stop_loss,
        take_profit=row.take_profit,
        highest_price=row.highest_price or row.entry_price,
    )
