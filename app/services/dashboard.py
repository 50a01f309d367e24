"""What the dashboard shows a user at a glance: each account's equity and trading state (with its reason), the
latest signals with what became of each, today's and this month's AI spend against the budgets, the global kill
switch, dust left by closed positions, and where the replay is.

Read-only: one call per page load, a handful of queries whatever the number of analyses or trades (each list is
limited and read in bulk).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import NotFoundError
from app.models import Account, Analysis, AnalysisStatus, Decision, Order, Position, PositionStatus
from app.services import Clock, accounts, kill_switch, system_clock, usage, users
from app.services.accounts import AccountSummary
from app.services.equity_curve import EquityCurve, equity_curve
from app.services.kill_switch import KillSwitchState
from app.services.replay import ReplayStatus, replay_status
from app.services.usage import Period
from exchanges.orders import OrderStatus

SIGNALS_SHOWN = 10
DUST_SHOWN = 10
# Codes every approval carries: they say nothing about why an order was or was not placed.
_ROUTINE_CODES = frozenset({"APPROVED", "SIZED"})


@dataclass(frozen=True)
class SignalLine:
    """A signal and what became of it. `outcome` is one of "filled", "open" (an order not yet filled), "refused",
    "advice" (approved or not judged, no order), "hold", "failed" (no valid signal); `text` says it in words."""

    analysis: Analysis
    action: str | None  # BUY, SELL, HOLD; None when the analysis failed
    confidence: int | None  # 0-100
    outcome: str
    text: str
    order: Order | None


@dataclass(frozen=True)
class DustLine:
    position: Position
    account: Account
    quantity: Decimal  # in the base asset
    value: Decimal  # in the account's quote currency, at the exit price


@dataclass(frozen=True)
class Dashboard:
    accounts: list[AccountSummary]
    signals: list[SignalLine]
    budgets: list[Period]  # today, this month (UTC)
    global_switch: KillSwitchState | None  # None: never set
    dust: list[DustLine]
    replay: ReplayStatus | None  # None unless the scheduler's market is the replay


def dashboard(
    session: Session, settings: Settings, user_id: int, now: datetime, wall: Clock = system_clock
) -> Dashboard:
    """Everything the dashboard shows for `user_id` at `now` (UTC); the replay's status is read on `wall`, the clock
    the installation's replay runs on (one loaded replay per clock, so never a clock made per request).
    `NotFoundError` for an unknown or inactive user."""
    user = users.active_user(session, user_id)
    if user is None:
        raise NotFoundError(f"no user #{user_id}", field="user")
    return Dashboard(
        accounts=accounts.account_summaries(session, settings, user_id),
        signals=latest_signals(session, user_id),
        budgets=usage.budget_status(session, user, now),
        global_switch=kill_switch.global_state(session),
        dust=dust(session, user_id),
        replay=replay_status(session, settings, wall) if settings.scheduler.market == "replay" else None,
    )


def latest_signals(session: Session, user_id: int, limit: int = SIGNALS_SHOWN) -> list[SignalLine]:
    """The user's `limit` latest analyses, newest first, each with the risk decision's outcome and its order; three
    queries whatever `limit`."""
    analyses = list(
        session.scalars(select(Analysis).where(Analysis.user_id == user_id).order_by(Analysis.id.desc()).limit(limit))
    )
    decisions: dict[int, list[Decision]] = {}
    orders: dict[int, Order] = {}
    if analyses:
        query = select(Decision).where(Decision.analysis_id.in_([a.id for a in analyses])).order_by(Decision.id)
        for decision in session.scalars(query):
            decisions.setdefault(decision.analysis_id, []).append(decision)
        approved = [d.id for judged in decisions.values() for d in judged if d.approved]
        if approved:
            for order in session.scalars(select(Order).where(Order.decision_id.in_(approved)).order_by(Order.id)):
                if order.decision_id is not None:
                    orders.setdefault(order.decision_id, order)
    return [_line(analysis, decisions.get(analysis.id, []), orders) for analysis in analyses]


def _line(analysis: Analysis, judged: list[Decision], orders: dict[int, Order]) -> SignalLine:
    signal = analysis.signal or {}
    action, confidence = signal.get("action"), signal.get("confidence")
    if analysis.status is AnalysisStatus.FAILED or not signal:
        why = analysis.error_code or analysis.status.value
        return SignalLine(analysis, None, None, "failed", f"no signal: {why}", None)
    if action == "HOLD":
        return SignalLine(analysis, action, confidence, "hold", "hold: no trade", None)
    if not judged:
        return SignalLine(analysis, action, confidence, "advice", "advice only: no account judged it", None)
    decision = judged[0]
    codes = [str(reason.get("code")) for reason in decision.reasons if reason.get("code") not in _ROUTINE_CODES]
    if not decision.approved:
        return SignalLine(analysis, action, confidence, "refused", "refused: " + ", ".join(codes or ["?"]), None)
    order = orders.get(decision.id)
    if order is None:
        return SignalLine(analysis, action, confidence, "advice", "approved, advice only: no order placed", None)
    if order.status is OrderStatus.CLOSED or order.filled_quantity > 0:
        base = analysis.symbol.partition("/")[0]
        price = f" at {order.average_fill_price:,.2f}" if order.average_fill_price is not None else ""
        text = f"approved, {order.side.value} filled {order.filled_quantity.normalize():f} {base}{price}"
        return SignalLine(analysis, action, confidence, "filled", text, order)
    failed = order.status in (OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.EXPIRED)
    text = f"approved, order {order.status.value}" + (f": {order.error_code}" if order.error_code else "")
    return SignalLine(analysis, action, confidence, "refused" if failed else "open", text, order)


def dust(session: Session, user_id: int, limit: int = DUST_SHOWN) -> list[DustLine]:
    """Remainders closed positions left below the market's amount step or minimum notional (they cannot be sold),
    newest first."""
    query = (
        select(Position, Account)
        .join(Account, Account.id == Position.account_id)
        .where(Account.user_id == user_id, Position.status == PositionStatus.CLOSED, Position.dust_quantity > 0)
        .order_by(Position.id.desc())
        .limit(limit)
    )
    return [
        DustLine(position, account, position.dust_quantity, position.dust_value)
        for position, account in session.execute(query)
    ]


@dataclass(frozen=True)
class AccountEquity:
    summary: AccountSummary
    curve: EquityCurve


def account_equity(session: Session, settings: Settings, user_id: int, account_id: int) -> AccountEquity:
    """One of the user's accounts now and its equity curve up to the latest price its equity was valued at;
    `NotFoundError` (field `account_id`) for an account that is missing or someone else's."""
    summary = next(
        (
            item
            for item in accounts.account_summaries(session, settings, user_id)
            if item.overview.account.id == account_id
        ),
        None,
    )
    if summary is None:
        raise NotFoundError(f"no account #{account_id}", field="account_id")
    item = summary.overview
    valued_at = max((p.quote.at for p in item.positions if p.quote is not None), default=None)
    return AccountEquity(summary, equity_curve(session, user_id, account_id, item.equity, valued_at))
