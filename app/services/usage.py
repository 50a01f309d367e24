"""AI spend against the budgets: what a user has spent (or holds reserved) today and this month, in USD."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.errors import InvalidInputError, NotFoundError, shown
from app.models import Analysis, ApiKey, BudgetLedgerEntry, LedgerStatus, User, Watch
from app.models.types import DECIMAL_SCALE
from app.persistence.budget_ledger import committed_usd, period_starts
from app.services import api_keys, audit, notifications
from app.services.notification_wire import BUDGET_THRESHOLD_PERCENT


@dataclass(frozen=True)
class Period:
    name: str  # "today" or "this month" (UTC)
    spent_usd: Decimal  # settled calls plus reservations still open
    budget_usd: Decimal

    @property
    def remaining_usd(self) -> Decimal:
        return max(self.budget_usd - self.spent_usd, Decimal(0))


def budget_status(session: Session, user: User, now: datetime) -> list[Period]:
    """Today's and this month's AI spend of `user` against their daily and monthly budgets (UTC periods)."""
    day, month = period_starts(now)
    return [
        Period("today", committed_usd(session, user.id, day), user.daily_budget_usd),
        Period("this month", committed_usd(session, user.id, month), user.monthly_budget_usd),
    ]


def notify_budget_crossings(session: Session, user: User, cost_usd: Decimal, now: datetime) -> list[str]:
    """After a call that cost `cost_usd`, queue `budget.threshold` for each period whose spend just crossed
    `BUDGET_THRESHOLD_PERCENT` of its budget, and `budget.exhausted` for one that just reached it. Crossings only,
    so a user is told once per period, not on every call. Returns the events queued. The caller commits."""
    events = []
    for period in budget_status(session, user, now):
        if period.budget_usd <= 0:
            continue
        before, after = period.spent_usd - cost_usd, period.spent_usd
        threshold = period.budget_usd * BUDGET_THRESHOLD_PERCENT / 100
        if before < period.budget_usd <= after:
            event = "budget.exhausted"
        elif before < threshold <= after:
            event = "budget.threshold"
        else:
            continue
        notifications.notify(
            session,
            user.id,
            event,
            {
                "period": period.name,
                "spent_usd": after,
                "budget_usd": period.budget_usd,
                "message": f"AI spend {period.name}: {after:.4f} of {period.budget_usd:.2f} USD",
            },
            now=now,
        )
        events.append(event)
    return events


USAGE_DAYS_MAX = 366
_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
# What a ledger entry counts against a budget: the real cost once settled, the worst case while still reserved,
# nothing once released.
_COMMITTED = case(
    (BudgetLedgerEntry.status == LedgerStatus.SETTLED, BudgetLedgerEntry.settled_usd),
    (BudgetLedgerEntry.status == LedgerStatus.RESERVED, BudgetLedgerEntry.reserved_usd),
    else_=0,
)


@dataclass(frozen=True)
class Spend:
    """USD committed (settled plus still reserved) under one heading of a usage report."""

    key: str  # the day (YYYY-MM-DD), "provider:model", or the watch's / API key's id as text ("" for none)
    label: str  # what a person reads: the day, the model, "BTC/USDT 1h rules:sma_cross", "ci key (sh_ab12)"
    spent_usd: Decimal
    calls: int  # ledger entries: reservations made, settled or still open (released ones count 0 USD)
    record_id: int | None = None  # the watch's or API key's id; None for days, models and "not through one"


@dataclass(frozen=True)
class UsageReport:
    since: datetime  # start of the first UTC day in the window
    until: datetime  # the report's time
    days: int
    total_usd: Decimal
    by_day: list[Spend]  # every UTC day of the window, oldest first, zero days included
    by_model: list[Spend]  # most spent first
    by_watch: list[Spend]  # record_id None: calls made outside any watch (analyze now, backtests)
    by_api_key: list[Spend]  # record_id None: calls not made through an API key (web UI, CLI, scheduler)
    analyses: int  # analyses in the window that asked an AI model (rules analyses never do)
    cached_analyses: int  # of those, answered from the response cache at no cost

    @property
    def cache_hit_rate(self) -> float | None:
        """cached_analyses / analyses; None when there were none."""
        return self.cached_analyses / self.analyses if self.analyses else None


def usage_report(session: Session, user_id: int, days: int, now: datetime) -> UsageReport:
    """The user's AI spend over the last `days` UTC days (today included), in USD: by day, model, watch and API key,
    from the budget ledger (settled cost plus open reservations), and the response-cache hit rate of their AI
    analyses in the same window. Raises `InvalidInputError` (field `days`) outside 1..366."""
    if not 1 <= days <= USAGE_DAYS_MAX:
        raise InvalidInputError(f'days must be 1 to {USAGE_DAYS_MAX}, got "{days}"', field="days")
    today, _ = period_starts(now)
    since = today - timedelta(days=days - 1)
    rows = session.execute(
        select(
            BudgetLedgerEntry.created_at,
            BudgetLedgerEntry.provider,
            BudgetLedgerEntry.model,
            BudgetLedgerEntry.watch_id,
            BudgetLedgerEntry.api_key_id,
            _COMMITTED,
        ).where(BudgetLedgerEntry.user_id == user_id, BudgetLedgerEntry.created_at >= since)
    ).all()
    # Summed here, in Decimal: SQLite would sum NUMERIC as floats, and the rows must be bucketed by UTC day anyway.
    by_day: dict[date, list[Decimal]] = defaultdict(list)
    by_model: dict[str, list[Decimal]] = defaultdict(list)
    by_watch: dict[int | None, list[Decimal]] = defaultdict(list)
    by_key: dict[int | None, list[Decimal]] = defaultdict(list)
    for created_at, provider, model, watch_id, api_key_id, amount in rows:
        value = Decimal(str(amount or 0)).quantize(_QUANTUM)
        by_day[_utc(created_at).date()].append(value)
        by_model[f"{provider}:{model}"].append(value)
        by_watch[watch_id].append(value)
        by_key[api_key_id].append(value)
    watches = _watch_names(session, user_id, by_watch)
    keys = _key_names(session, user_id, by_key)
    cached = Analysis.cached.is_(True)
    total, hits = session.execute(
        select(func.count(), func.coalesce(func.sum(case((cached, 1), else_=0)), 0)).where(
            Analysis.user_id == user_id, Analysis.created_at >= since, Analysis.provider != "rules"
        )
    ).one()
    return UsageReport(
        since=since,
        until=now,
        days=days,
        total_usd=sum((value for values in by_model.values() for value in values), Decimal(0)),
        by_day=[
            _spend(day.isoformat(), day.isoformat(), by_day.get(day, []))
            for day in (since.date() + timedelta(days=n) for n in range(days))
        ],
        by_model=_ranked(_spend(model, model, values) for model, values in by_model.items()),
        by_watch=_ranked(
            _spend(str(watch_id or ""), watches.get(watch_id, "not from a watch"), values, watch_id)
            for watch_id, values in by_watch.items()
        ),
        by_api_key=_ranked(
            _spend(str(key_id or ""), keys.get(key_id, "not through an API key"), values, key_id)
            for key_id, values in by_key.items()
        ),
        analyses=int(total),
        cached_analyses=int(hits),
    )


def _spend(key: str, label: str, values: list[Decimal], record_id: int | None = None) -> Spend:
    return Spend(key, label, sum(values, Decimal(0)), len(values), record_id)


def _ranked(spends: Iterable[Spend]) -> list[Spend]:
    return sorted(spends, key=lambda spend: (-spend.spent_usd, spend.label))


def _watch_names(session: Session, user_id: int, ids: Iterable[int | None]) -> dict[int | None, str]:
    wanted = [watch_id for watch_id in ids if watch_id is not None]
    if not wanted:
        return {}
    rows = session.scalars(select(Watch).where(Watch.id.in_(wanted), Watch.user_id == user_id))
    return {row.id: f"{row.symbol} {row.timeframe} {row.signal_source}" for row in rows}


def _key_names(session: Session, user_id: int, ids: Iterable[int | None]) -> dict[int | None, str]:
    wanted = [key_id for key_id in ids if key_id is not None]
    if not wanted:
        return {}
    rows = session.scalars(select(ApiKey).where(ApiKey.id.in_(wanted), ApiKey.user_id == user_id))
    return {row.id: f"{row.name} ({row.prefix})" for row in rows}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Cap:
    """One budget period: its cap (None: no cap of its own), what is committed in it and what is left."""

    name: str  # "today" or "this month" (UTC)
    budget_usd: Decimal | None
    spent_usd: Decimal  # settled calls plus reservations still open, since the period began

    @property
    def remaining_usd(self) -> Decimal | None:
        return None if self.budget_usd is None else max(self.budget_usd - self.spent_usd, Decimal(0))


@dataclass(frozen=True)
class Budgets:
    user: list[Cap]  # the user's daily and monthly budget
    api_key: list[Cap]  # the calling key's own daily and monthly caps, counting only what went through it
    api_key_id: int


def budgets(session: Session, user_id: int, api_key_id: int, now: datetime) -> Budgets:
    """The user's daily and monthly AI budgets (UTC day and month) and the API key `api_key_id`'s own caps, each
    with what is spent (settled plus reserved, in USD) and what remains. A key without a cap of its own has
    `budget_usd` None there: only the user's budget limits it. Raises `NotFoundError` for a user or key that is
    missing, or a key that is not the user's."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user #{user_id}", field="user_id")
    key = session.get(ApiKey, api_key_id)
    if key is None or key.user_id != user_id:
        raise NotFoundError(f"no api_key #{api_key_id}", field="api_key_id", details={"id": api_key_id})
    key_day, key_month = api_keys.spent_by_key(session, key.id, now)
    return Budgets(
        user=[Cap(period.name, period.budget_usd, period.spent_usd) for period in budget_status(session, user, now)],
        api_key=[
            Cap("today", key.daily_budget_usd, key_day),
            Cap("this month", key.monthly_budget_usd, key_month),
        ],
        api_key_id=key.id,
    )


# A user's own budget: far above what a small account's AI spend could sensibly be, well inside the column.
MAX_BUDGET_USD = Decimal(100_000)
BUDGET_DECIMALS = 4  # a call costs fractions of a cent: a budget may be set to 0.0001 USD


@dataclass(frozen=True)
class BudgetChange:
    """The user's budgets as typed (text or Decimal), in USD per UTC day and per UTC month."""

    daily_budget_usd: str | Decimal
    monthly_budget_usd: str | Decimal


def change_budgets(session: Session, user_id: int, change: BudgetChange) -> User:
    """Set the user's daily and monthly AI budgets (USD); audited. Nothing is changed when either is wrong.

    0 is allowed (no paid AI calls at all). Raises `InvalidInputError` on field `daily_budget_usd` or
    `monthly_budget_usd` naming the value when it is not a number from 0 to `MAX_BUDGET_USD` with at most
    `BUDGET_DECIMALS` decimals, or when the daily budget is above the monthly one; `NotFoundError` for a missing
    user. The caller commits.
    """
    daily = budget_amount(change.daily_budget_usd, "daily_budget_usd")
    monthly = budget_amount(change.monthly_budget_usd, "monthly_budget_usd")
    if daily > monthly:
        raise InvalidInputError(
            f"daily_budget_usd {shown(daily)} is more than the monthly budget {shown(monthly)} USD: "
            "a day could never spend it",
            field="daily_budget_usd",
            details={"value": shown(daily)},
        )
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no user #{user_id}", field="user_id")
    before = (user.daily_budget_usd, user.monthly_budget_usd)
    user.daily_budget_usd, user.monthly_budget_usd = daily, monthly
    session.flush()
    audit.record(
        session,
        "user.budgets",
        f"AI budgets set to {shown(daily)} USD a day and {shown(monthly)} USD a month "
        f"(were {shown(before[0])} and {shown(before[1])})",
        user_id=user_id,
        details={"daily_budget_usd": shown(daily), "monthly_budget_usd": shown(monthly)},
    )
    return user


def budget_amount(value: str | Decimal, field: str) -> Decimal:
    """A budget in USD from what the user typed ("1", "0.25", "1,000"); `InvalidInputError` on `field` otherwise."""
    text = str(value).strip().replace(",", "").removeprefix("$")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidInputError(
            f'{field} must be an amount in USD, got "{str(value)[:40]}"',
            field=field,
            details={"value": str(value)[:40]},
        ) from None
    if not amount.is_finite():
        raise InvalidInputError(
            f'{field} must be an amount in USD, got "{text[:40]}"', field=field, details={"value": text[:40]}
        )
    if not 0 <= amount <= MAX_BUDGET_USD:
        raise InvalidInputError(
            f'{field} must be between 0 and {MAX_BUDGET_USD:,} USD, got "{text[:40]}"',
            field=field,
            details={"value": text[:40]},
        )
    if amount != amount.quantize(Decimal(1).scaleb(-BUDGET_DECIMALS)):
        raise InvalidInputError(
            f"{field} has at most {BUDGET_DECIMALS} decimals, got {text[:40]}",
            field=field,
            details={"value": text[:40]},
        )
    return amount
