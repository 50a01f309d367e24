"""Watches: a symbol and timeframe analysed on every close of that timeframe by one signal source, within its own
budget. Creating, changing, pausing, resuming and deleting them, each validated and audited.

Every function here only writes the database: the caller commits (one unit of work per command or request), so a
refusal leaves nothing written.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ai.signals import PROVIDER_KEY_VARIABLES
from app.config import Settings
from app.errors import ConflictError, InvalidInputError, shown
from app.models import Account, Watch, WatchRun
from app.services import api_keys, audit, markets, watch_market_data
from app.services.analysis_inputs import rule_params_for, signal_chain
from app.services.credentials import provider_keys
from app.services.lookup import owned
from app.services.pages import Page, page_of
from app.services.usage import budget_amount
from exchanges.timeframes import TIMEFRAME_SECONDS

# The longest signal-source spec a watch can hold (the column's width).
SIGNAL_SOURCE_LENGTH = 80
# Budget text that means "no cap".
NO_CAP = ("", "none")


class Keep(Enum):
    """In a `WatchChange`: leave this setting as it is (None means "none", e.g. no account, no cap)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class NewWatch:
    symbol: str
    timeframe: str
    signals: str  # a source spec or fallback chain, e.g. "deepseek -> rules:sma_cross"
    exchange_id: str = "binance"
    params: Mapping[str, str] = field(default_factory=dict)  # rules strategy parameters as typed
    account_id: int | None = None
    max_cost_per_call_usd: str | Decimal | None = None  # text as typed ("0.002"); None or "none": no cap
    daily_budget_usd: str | Decimal | None = None
    auto_execute: bool = False  # False: advice only
    api_key_id: int | None = None  # created through this API key: its runs spend under its caps and allowed models


@dataclass(frozen=True)
class WatchChange:
    """What an edit changes; `KEEP` leaves a setting as it is. `params` replace the stored ones; when the signals
    change and `params` are kept, the stored ones are checked against the new source."""

    signals: str | Literal[Keep.KEEP] = KEEP
    params: Mapping[str, str] | Literal[Keep.KEEP] = KEEP
    account_id: int | Literal[Keep.KEEP] | None = KEEP
    max_cost_per_call_usd: str | Decimal | Literal[Keep.KEEP] | None = KEEP
    daily_budget_usd: str | Decimal | Literal[Keep.KEEP] | None = KEEP
    auto_execute: bool | Literal[Keep.KEEP] = KEEP
    # Changed through this API key: the watch then spends under it (its caps and allowed models); None keeps the key.
    api_key_id: int | None = None


@dataclass(frozen=True)
class WatchView:
    """A watch with its latest run (by bar time), if it has run."""

    watch: Watch
    last_run: WatchRun | None
    warnings: tuple[str, ...] = ()  # said once, when the watch is added: e.g. the replay has too little history yet

    @property
    def schedule(self) -> str:
        return schedule_text(self.watch.timeframe)


def schedule_text(timeframe: str) -> str:
    """When a watch of `timeframe` runs, as people read it: "on every 1h close"."""
    return f"on every {timeframe} close"


def cadence_minutes(timeframe: str) -> int:
    """The length of one bar of a known timeframe in minutes (the legacy `Watch.cadence_minutes`)."""
    markets.check_timeframe(timeframe)
    return TIMEFRAME_SECONDS[timeframe] // 60


def list_watches(session: Session, user_id: int) -> list[Watch]:
    """The user's watches, by symbol and timeframe."""
    query = select(Watch).where(Watch.user_id == user_id).order_by(Watch.symbol, Watch.timeframe, Watch.id)
    return list(session.scalars(query))


def watch_views(session: Session, user_id: int) -> list[WatchView]:
    """The user's watches, by symbol and timeframe, each with its latest run."""
    watches = list_watches(session, user_id)
    latest = _latest_runs(session, [watch.id for watch in watches])
    return [WatchView(watch, latest.get(watch.id)) for watch in watches]


def watch_page(session: Session, user_id: int, limit: int, before_id: int | None) -> Page[WatchView]:
    """A page of the user's watches, newest first (see `app.services.pages.page_of`), each with its latest run."""
    page = page_of(session, select(Watch).where(Watch.user_id == user_id), Watch.id, limit, before_id)
    latest = _latest_runs(session, [watch.id for watch in page.items])
    return Page([WatchView(watch, latest.get(watch.id)) for watch in page.items], page.next_before_id)


def get_watch(session: Session, user_id: int, watch_id: int) -> WatchView:
    """One of the user's watches; `NotFoundError` (field `watch_id`) when it is missing or someone else's."""
    watch = owned(session, Watch, watch_id, user_id)
    return WatchView(watch, _latest_runs(session, [watch.id]).get(watch.id))


def create_watch(session: Session, settings: Settings, user_id: int, request: NewWatch) -> WatchView:
    """Validate and add a watch; audited (`watch.created`). The caller commits.

    Raises `InvalidInputError` naming the field for an unknown timeframe, exchange or symbol, a bad signal source or
    rule parameter, a budget that is not an amount >= 0, or auto-execution without an account; `NotFoundError` for
    a missing or foreign account; `ConflictError` naming the watch the user already has for the same exchange,
    symbol, timeframe and signal source.
    """
    symbol = request.symbol.strip().upper()
    exchange_id = request.exchange_id.strip().lower()
    timeframe = request.timeframe.strip()
    minutes = cadence_minutes(timeframe)
    markets.market_rules(session, settings, exchange_id, symbol)
    source, params = _source_and_params(request.signals, request.params)
    api_keys.usable_key(session, user_id, request.api_key_id, signal_chain(source))
    _check_provider_keys(session, settings, user_id, source)
    max_cost = parse_budget(request.max_cost_per_call_usd, "max_cost_per_call_usd")
    daily = parse_budget(request.daily_budget_usd, "daily_budget_usd")
    account = _account(session, user_id, request.account_id, exchange_id)
    _check_auto_execute(request.auto_execute, account)
    _check_unique(session, user_id, exchange_id, symbol, timeframe, source)
    warnings = watch_market_data.market_data_warnings(session, settings, account, exchange_id, symbol, timeframe)
    watch = Watch(
        user_id=user_id,
        account_id=account.id if account else None,
        exchange_id=exchange_id,
        symbol=symbol,
        timeframe=timeframe,
        cadence_minutes=minutes,
        signal_source=source,
        signal_params=params,
        max_cost_per_call_usd=max_cost,
        daily_budget_usd=daily,
        auto_execute=request.auto_execute,
        enabled=True,
        api_key_id=request.api_key_id,
    )
    session.add(watch)
    session.flush()
    _audit(session, watch, "watch.created", f"created {_label(watch)}", **_settings(watch))
    return WatchView(watch, None, warnings)


def change_watch(session: Session, user_id: int, watch_id: int, change: WatchChange) -> WatchView:
    """Change a watch's signals, rule parameters, account, budgets or auto-execution, validated as at creation;
    audited (`watch.changed`) when anything changed. The caller commits; nothing is changed on a refusal."""
    watch = owned(session, Watch, watch_id, user_id)
    source, params = watch.signal_source, dict(watch.signal_params)
    if change.signals is not KEEP or change.params is not KEEP:
        signals = watch.signal_source if change.signals is KEEP else change.signals
        raw = {k: str(v) for k, v in watch.signal_params.items()} if change.params is KEEP else change.params
        source, params = _source_and_params(signals, raw)
    max_cost = watch.max_cost_per_call_usd
    if change.max_cost_per_call_usd is not KEEP:
        max_cost = parse_budget(change.max_cost_per_call_usd, "max_cost_per_call_usd")
    daily = watch.daily_budget_usd
    if change.daily_budget_usd is not KEEP:
        daily = parse_budget(change.daily_budget_usd, "daily_budget_usd")
    account_id = watch.account_id if change.account_id is KEEP else change.account_id
    account = _account(session, user_id, account_id, watch.exchange_id)
    auto_execute = watch.auto_execute if change.auto_execute is KEEP else change.auto_execute
    _check_auto_execute(auto_execute, account)
    if source != watch.signal_source:
        _check_unique(session, user_id, watch.exchange_id, watch.symbol, watch.timeframe, source)
    api_key_id = change.api_key_id if change.api_key_id is not None else watch.api_key_id
    api_keys.usable_key(session, user_id, api_key_id, signal_chain(source))

    before = _settings(watch)
    watch.signal_source = source
    watch.signal_params = params
    watch.max_cost_per_call_usd = max_cost
    watch.daily_budget_usd = daily
    watch.account_id = account.id if account else None
    watch.auto_execute = auto_execute
    watch.api_key_id = api_key_id
    after = _settings(watch)
    changed = {name: value for name, value in after.items() if before[name] != value}
    if changed:
        session.flush()
        what = ", ".join(f"{name}={_plain(value)}" for name, value in changed.items())
        _audit(session, watch, "watch.changed", f"changed {_label(watch)}: {what}", before=before, after=after)
    return get_watch(session, user_id, watch.id)


def pause_watch(session: Session, user_id: int, watch_id: int) -> WatchView:
    """Stop running a watch until it is resumed; audited (`watch.paused`) unless it was already paused."""
    return _set_enabled(session, user_id, watch_id, enabled=False)


def resume_watch(session: Session, user_id: int, watch_id: int) -> WatchView:
    """Run a paused watch again from the next close; audited (`watch.resumed`) unless it was already running."""
    return _set_enabled(session, user_id, watch_id, enabled=True)


def delete_watch(session: Session, user_id: int, watch_id: int) -> Watch:
    """Remove a watch and its run history (analyses it made stay, without it); audited (`watch.deleted`).

    Returns the deleted row (its attributes are still readable until the caller commits)."""
    watch = owned(session, Watch, watch_id, user_id)
    _audit(session, watch, "watch.deleted", f"deleted {_label(watch)}", watch_id=watch.id, **_settings(watch))
    session.delete(watch)
    session.flush()
    return watch


def parse_budget(value: str | Decimal | None, name: str) -> Decimal | None:
    """An amount in USD from text as typed ("0.002"), read as a user's own budget is (`usage.budget_amount`: 0 to
    100,000 USD, at most 4 decimals); None, "" or "none" mean no cap.

    Raises `InvalidInputError` (field `name`) naming the value as written."""
    if value is None:
        return None
    text = value if isinstance(value, str) else shown(value)
    if text.strip().lower() in NO_CAP:
        return None
    return budget_amount(text, name)


def _set_enabled(session: Session, user_id: int, watch_id: int, *, enabled: bool) -> WatchView:
    watch = owned(session, Watch, watch_id, user_id)
    if watch.enabled != enabled:
        watch.enabled = enabled
        session.flush()
        verb = "resumed" if enabled else "paused"
        _audit(session, watch, f"watch.{verb}", f"{verb} {_label(watch)}", watch_id=watch.id)
    return get_watch(session, user_id, watch.id)


def _check_provider_keys(session: Session, settings: Settings, user_id: int, source: str) -> None:
    """Refuse a chain whose paid source has no API key, neither the user's own nor the operator's: every run would
    fail. `InvalidInputError` (field `signals`)."""
    keys = provider_keys(session, settings, user_id)
    for spec in signal_chain(source):
        provider = spec.provider or spec.kind
        if spec.is_paid and provider not in keys:
            raise InvalidInputError(
                f"signals {source} asks {provider}, which has no API key yet: store your own {provider} key first "
                f"(Settings, AI provider keys), or ask the operator to set {PROVIDER_KEY_VARIABLES[provider]}",
                field="signals",
                details={"value": source},
            )


def _source_and_params(signals: str, raw: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The signal source written the one way it is stored ("deepseek -> rules:sma_cross") and the rule parameters
    the user set, checked against its strategy (the strategy's defaults apply to the others when it runs)."""
    chain = signal_chain(signals)
    source = " -> ".join(str(spec) for spec in chain)
    if len(source) > SIGNAL_SOURCE_LENGTH:
        raise InvalidInputError(
            f"signals must be at most {SIGNAL_SOURCE_LENGTH} characters, got {len(source)}",
            field="signals",
            details={"value": signals},
        )
    resolved = rule_params_for(chain, {key.strip(): value for key, value in raw.items()})
    return source, {key.strip(): resolved[key.strip()] for key in raw}


def _account(session: Session, user_id: int, account_id: int | None, exchange_id: str) -> Account | None:
    if account_id is None:
        return None
    account = owned(session, Account, account_id, user_id)
    if account.exchange_id != exchange_id:
        raise InvalidInputError(
            f"account #{account.id} trades on {account.exchange_id}, not {exchange_id}",
            field="account_id",
            details={"value": account_id},
        )
    return account


def _check_auto_execute(auto_execute: bool, account: Account | None) -> None:
    if auto_execute and account is None:
        raise InvalidInputError("auto_execute needs an account: orders go to one named account", field="auto_execute")


def _check_unique(session: Session, user_id: int, exchange_id: str, symbol: str, timeframe: str, source: str) -> None:
    existing = session.scalar(
        select(Watch.id).where(
            Watch.user_id == user_id,
            Watch.exchange_id == exchange_id,
            Watch.symbol == symbol,
            Watch.timeframe == timeframe,
            Watch.signal_source == source,
        )
    )
    if existing is not None:
        raise ConflictError(
            f"you already have watch #{existing} for {symbol} {timeframe} on {exchange_id} with {source}",
            details={"watch_id": existing},
        )


def _latest_runs(session: Session, watch_ids: list[int]) -> dict[int, WatchRun]:
    """Each watch's run of its latest bar."""
    if not watch_ids:
        return {}
    latest = (
        select(WatchRun.watch_id, func.max(WatchRun.bar_time).label("bar_time"))
        .where(WatchRun.watch_id.in_(watch_ids))
        .group_by(WatchRun.watch_id)
        .subquery()
    )
    runs = session.scalars(
        select(WatchRun).join(
            latest, (WatchRun.watch_id == latest.c.watch_id) & (WatchRun.bar_time == latest.c.bar_time)
        )
    )
    return {run.watch_id: run for run in runs}


def _settings(watch: Watch) -> dict[str, Any]:
    """What an edit may change, JSON-ready (amounts as strings)."""
    return {
        "signal_source": watch.signal_source,
        "signal_params": dict(watch.signal_params),
        "account_id": watch.account_id,
        "max_cost_per_call_usd": _amount(watch.max_cost_per_call_usd),
        "daily_budget_usd": _amount(watch.daily_budget_usd),
        "auto_execute": watch.auto_execute,
        "api_key_id": watch.api_key_id,
    }


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else shown(value)


def _plain(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
    if value is None:
        return "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _label(watch: Watch) -> str:
    return f"watch #{watch.id} ({watch.symbol} {watch.timeframe} on {watch.exchange_id}, {watch.signal_source})"


def _audit(session: Session, watch: Watch, event: str, message: str, **details: Any) -> None:
    audit.record(session, event, message, user_id=watch.user_id, account_id=watch.account_id, details=details)
