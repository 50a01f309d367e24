"""Account-wide limits (daily loss, drawdown, cooldown) and the trading-state transitions they drive."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

from risk.config import RiskConfig
from risk.states import TradingState
from risk.steps import EXACT
from risk.text import exact, money, percent, utc_time
from risk.values import AccountState, Code, Reason

HUNDRED = Decimal(100)


def as_utc(moment: datetime) -> datetime:
    # The domain keeps times in UTC; a naive time is read as UTC, never as the server's local time.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def daily_loss_reason(account: AccountState, config: RiskConfig) -> Reason | None:
    """DAILY_LOSS_LIMIT when today's realized loss reached the limit.

    The day's starting equity is approximated as equity - realized_pnl_today (unrealized moves are ignored).
    """
    day_start = account.equity - account.realized_pnl_today
    limit = day_start * config.daily_loss_limit_pct / HUNDRED
    if account.realized_pnl_today >= 0 or -account.realized_pnl_today < limit:
        return None
    loss, limit_text, start = money(-account.realized_pnl_today, limit, day_start)
    return Reason(
        Code.DAILY_LOSS_LIMIT,
        f"realized loss today {loss} >= {limit_text} {account.currency} "
        f"({percent(config.daily_loss_limit_pct)[0]} of {start} at the start of the UTC day)",
        exact(realized_pnl_today=account.realized_pnl_today, limit=limit, day_start_equity=day_start),
    )


def drawdown_reason(account: AccountState, config: RiskConfig) -> Reason | None:
    """MAX_DRAWDOWN when equity fell max_drawdown_pct or more below its peak (the kill switch)."""
    peak = max(account.peak_equity, account.equity)
    floor = peak * (1 - config.max_drawdown_pct / HUNDRED)
    if account.equity > floor:
        return None
    equity, floor_text, peak_text = money(account.equity, floor, peak)
    return Reason(
        Code.MAX_DRAWDOWN,
        f"equity {equity} <= {floor_text} {account.currency} "
        f"({percent(config.max_drawdown_pct)[0]} below the peak {peak_text})",
        exact(equity=account.equity, floor=floor, peak_equity=peak),
    )


def cooldown_reason(account: AccountState, config: RiskConfig, now: datetime) -> Reason | None:
    if account.last_loss_at is None or config.cooldown_minutes == 0:
        return None
    # A fill the exchange stamped a moment after the decision's clock still counts as a loss now, not a later one.
    loss_at = min(as_utc(account.last_loss_at), as_utc(now))
    until = loss_at + timedelta(minutes=config.cooldown_minutes)
    if as_utc(now) >= until:
        return None
    minutes_left = -(-(until - as_utc(now)) // timedelta(minutes=1))
    return Reason(
        Code.COOLDOWN_AFTER_LOSS,
        f"last loss at {utc_time(loss_at)}: {minutes_left} of {config.cooldown_minutes} cooldown minutes left "
        f"(until {utc_time(until)})",
        exact(last_loss_at=loss_at.isoformat(), until=until.isoformat(), minutes_left=minutes_left),
    )


def next_trading_state(account: AccountState, config: RiskConfig, now: datetime) -> tuple[TradingState, Reason | None]:
    """The state the rules require now, with the reason when it differs from the account's current state.

    - Drawdown kill switch hit -> HALTED, from any state.
    - HALTED is never left automatically: only a person resumes trading.
    - Daily loss limit hit -> REDUCING (only closes).
    - REDUCING -> ACTIVE on the first check of a UTC day on which the limit is not hit and no loss has been
      realized yet (last_loss_at before today). The account does not record who set REDUCING, so the app must not
      apply this release to a REDUCING state the user chose by hand.
    """
    with localcontext(EXACT):
        current = account.trading_state
        drawdown = drawdown_reason(account, config)
        if drawdown is not None:
            return TradingState.HALTED, (None if current is TradingState.HALTED else drawdown)
        if current is TradingState.HALTED:
            return current, None
        daily = daily_loss_reason(account, config)
        if daily is not None:
            return TradingState.REDUCING, (None if current is TradingState.REDUCING else daily)
        today = as_utc(now).date()
        if current is TradingState.REDUCING and (
            account.last_loss_at is None or as_utc(account.last_loss_at).date() < today
        ):
            return TradingState.ACTIVE, Reason(
                Code.NEW_TRADING_DAY,
                f"{today.isoformat()} UTC: no loss realized today, opening positions again",
                exact(day=today.isoformat()),
            )
        return current, None
