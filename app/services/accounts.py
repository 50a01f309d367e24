"""Trading accounts: listing them, their risk settings and trading state, connecting a live exchange, and the
deliberate resume of an account the risk manager stopped.

Every function here only writes the database: the caller commits (one unit of work per command or request).
"""

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ConflictError, InvalidInputError
from app.models import Account, PositionStatus
from app.persistence.account_book import open_positions
from app.services import audit, markets, notifications, positions
from app.services.lookup import owned
from app.services.positions import PositionNotes
from risk import RiskConfig, TradingState
from risk.config import MEANINGS, RiskSettingError

if TYPE_CHECKING:
    from app.services.overview import AccountOverview, PriceSource

TRADING_STATE_EVENT = "account.trading_state"


def list_accounts(session: Session, user_id: int) -> list[Account]:
    """The user's accounts, oldest first."""
    return list(session.scalars(select(Account).where(Account.user_id == user_id).order_by(Account.id)))


def get_account(session: Session, user_id: int, account_id: int) -> Account:
    """One of the user's accounts; `NotFoundError` when it is missing or someone else's."""
    return owned(session, Account, account_id, user_id)


@dataclass(frozen=True)
class RiskSetting:
    name: str
    value: Any  # Decimal, int, tuple of symbols, or None (off)
    overridden: bool  # set for this account (else the documented default)
    meaning: str


@dataclass(frozen=True)
class RiskView:
    account: Account
    settings: list[RiskSetting]
    trading_state: TradingState
    state_reason: str | None  # why the account is not ACTIVE (the audited switch), when it is not


def risk_view(session: Session, user_id: int, account_id: int) -> RiskView:
    """An account's risk settings (defaults and overrides) and its trading state with the reason for it."""
    account = get_account(session, user_id, account_id)
    config = RiskConfig.from_overrides(account.risk_settings)
    settings = [
        RiskSetting(name, getattr(config, name), name in account.risk_settings, meaning)
        for name, meaning in MEANINGS.items()
    ]
    return RiskView(account, settings, account.trading_state, _state_reason(session, account))


def _state_reason(session: Session, account: Account) -> str | None:
    if account.trading_state is TradingState.ACTIVE:
        return None
    event = audit.latest(session, account.id, TRADING_STATE_EVENT)
    if event is None:
        return "set before reasons were recorded"
    # The event reads "HALTED: <reason>"; shown beside the state, the reason alone is enough.
    return event.message.removeprefix(f"{account.trading_state.value}: ")


@dataclass(frozen=True)
class RiskChange:
    """Settings to set (name -> value as the user typed it) and settings to put back to their default."""

    set: dict[str, str]
    reset: tuple[str, ...] = ()


def change_risk_settings(
    session: Session, settings: Settings, user_id: int, account_id: int, change: RiskChange
) -> RiskView:
    """Validate and store an account's risk overrides; audited. Nothing is stored when anything is wrong.

    Raises `InvalidInputError` naming the setting the user changed: an unknown name (set or reset), a bad value,
    a value that conflicts with another setting (both are named), or an allowlisted symbol the exchange does not
    list. The caller commits.
    """
    account = get_account(session, user_id, account_id)
    known = {spec.name for spec in fields(RiskConfig)}
    for name in [*change.set, *change.reset]:
        if name not in known:
            raise InvalidInputError(
                f'unknown risk setting "{name}"; allowed: {", ".join(MEANINGS)}', field=name, details={"value": name}
            )
    overrides = dict(account.risk_settings)
    overrides.update(change.set)
    for name in change.reset:
        overrides.pop(name, None)
    try:
        config = RiskConfig.from_overrides(overrides)
    except RiskSettingError as error:
        raise _blame(error, change, overrides) from None
    if "symbol_allowlist" in change.set:
        _check_symbols(session, settings, account.exchange_id, config.symbol_allowlist)
    if change.set or change.reset:
        account.risk_settings = overrides
        audit.for_account(
            session,
            account,
            "account.risk_settings",
            "risk settings changed: " + ", ".join([*(f"{k}={v}" for k, v in change.set.items()), *change.reset]),
            overrides=overrides,
        )
    return risk_view(session, user_id, account_id)


def _blame(error: RiskSettingError, change: RiskChange, overrides: dict[str, Any]) -> InvalidInputError:
    """Name the setting the user changed; when the failing check is another setting's range, name both."""
    changed = [*change.set, *change.reset]
    if error.setting in changed or not error.related:
        return InvalidInputError(str(error), field=error.setting)
    culprit = next((name for name in error.related if name in changed), error.related[0])
    defaults = RiskConfig()

    def current(name: str) -> str:
        value = overrides.get(name, getattr(defaults, name))
        return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)

    return InvalidInputError(
        f"{culprit} {current(culprit)} conflicts with {error.setting} {current(error.setting)}: "
        f"the stops need {error.rule}",
        field=culprit,
        details={"conflicts_with": error.setting},
    )


def _check_symbols(session: Session, settings: Settings, exchange_id: str, symbols: tuple[str, ...]) -> None:
    for symbol in symbols:
        try:
            markets.market_rules(session, settings, exchange_id, symbol)
        except InvalidInputError as error:
            raise InvalidInputError(
                f"symbol_allowlist: {error.message}", field="symbol_allowlist", details=error.details
            ) from None


@dataclass(frozen=True)
class Resumed:
    account: Account
    previous_state: TradingState
    previous_reason: str | None  # why it had stopped
    peak_equity: Decimal  # the new peak the drawdown is measured from, in the quote currency


def resume_trading(session: Session, user_id: int, account_id: int, now: datetime) -> Resumed:
    """A person's deliberate decision to let a HALTED or REDUCING account open positions again; audited.

    The drawdown is measured afresh from the account's equity now (cash plus open positions at cost), or the kill
    switch would trip again at the next bar. Raises `ConflictError` when the account is already ACTIVE. The caller
    commits.
    """
    account = get_account(session, user_id, account_id)
    if account.trading_state is TradingState.ACTIVE:
        raise ConflictError(f"account #{account.id} is already ACTIVE", field="trading_state")
    previous, reason = account.trading_state, _state_reason(session, account)
    peak = account.current_balance + sum((p.cost_basis for p in open_positions(session, account.id)), Decimal(0))
    account.trading_state = TradingState.ACTIVE
    account.peak_equity = peak
    audit.for_account(
        session,
        account,
        TRADING_STATE_EVENT,
        f"ACTIVE: resumed by its owner (was {previous.value}: {reason}); drawdown measured from "
        f"{format(peak.normalize(), 'f')} {account.quote_currency}",
        previous_state=previous.value,
        resumed_at=now.isoformat(),
    )
    notifications.notify(
        session,
        account.user_id,
        "account.trading_state",
        {
            "account_id": account.id,
            "trading_state": "ACTIVE",
            "message": f"resumed by its owner (was {previous.value})",
        },
        now=now,
    )
    return Resumed(account, previous, reason, peak)


# What the REST API reads of an account: its overview (equity and PnL at the latest offline price), its balances, its
# risk settings and state. `overview` is imported where it is used: it reaches `trading` (through `watch_runs` and
# `analyses`), and `trading` imports `kill_switch`, which imports this module.


@dataclass(frozen=True)
class Balance:
    currency: str
    amount: Decimal  # in `currency`


@dataclass(frozen=True)
class AccountSummary:
    overview: "AccountOverview"
    state_reason: str | None  # why the account is not ACTIVE, when it is not


@dataclass(frozen=True)
class AccountDetail:
    overview: "AccountOverview"
    risk: RiskView  # its settings, trading state and the reason for it
    balances: list[Balance]  # the quote currency's cash first, then each base asset held, by currency


@dataclass(frozen=True)
class AccountHoldings:
    overview: "AccountOverview"  # its open positions, priced
    closed: list[PositionNotes]  # the latest closed positions, newest first


@dataclass(frozen=True)
class TradingStatus:
    account: Account
    trading_state: TradingState
    state_reason: str | None


def account_summaries(
    session: Session, settings: Settings, user_id: int, prices: "PriceSource | None" = None
) -> list[AccountSummary]:
    """The user's accounts, oldest first, each with its equity and PnL at the latest offline price (quote currency,
    see `overview.account_overviews`) and why it is not ACTIVE when it is not."""
    from app.services import overview

    return [
        AccountSummary(item, _state_reason(session, item.account))
        for item in overview.account_overviews(session, settings, user_id, prices)
    ]


def account_detail(
    session: Session, settings: Settings, user_id: int, account_id: int, prices: "PriceSource | None" = None
) -> AccountDetail:
    """One account's overview, risk settings and balances: its cash in the quote currency and the quantity of each
    base asset its open positions hold (a live account's as last reconciled). Raises `NotFoundError` for an
    account that is missing or someone else's."""
    view = risk_view(session, user_id, account_id)
    item = _overview_of(session, settings, user_id, account_id, prices)
    held: dict[str, Decimal] = {}
    for position in item.positions:
        held[position.base] = held.get(position.base, Decimal(0)) + position.position.quantity
    balances = [Balance(item.account.quote_currency, item.cash)]
    balances += [Balance(currency, held[currency]) for currency in sorted(held)]
    return AccountDetail(item, view, balances)


def account_holdings(
    session: Session,
    settings: Settings,
    user_id: int,
    account_id: int,
    closed_limit: int = 10,
    prices: "PriceSource | None" = None,
) -> AccountHoldings:
    """The account's open positions priced at the latest offline price (unrealized PnL in the quote currency) and
    its `closed_limit` latest closed ones with their notes. Raises `NotFoundError` for an account that is missing
    or someone else's."""
    listed = positions.account_positions(session, user_id, account_id, closed_limit)
    closed = [item for item in listed.positions if item.position.status is PositionStatus.CLOSED]
    return AccountHoldings(_overview_of(session, settings, user_id, account_id, prices), closed)


def trading_status(session: Session, user_id: int, account_id: int) -> TradingStatus:
    """The account's trading state and why it is not ACTIVE (None when it is). Raises `NotFoundError` for an account
    that is missing or someone else's."""
    account = get_account(session, user_id, account_id)
    return TradingStatus(account, account.trading_state, _state_reason(session, account))


def trading_statuses(session: Session, user_id: int) -> list[TradingStatus]:
    """Every account of the user, oldest first, with its trading state and why it is not ACTIVE (None when it is)."""
    return [
        TradingStatus(account, account.trading_state, _state_reason(session, account))
        for account in list_accounts(session, user_id)
    ]


def _overview_of(
    session: Session, settings: Settings, user_id: int, account_id: int, prices: "PriceSource | None"
) -> "AccountOverview":
    from app.services import overview

    get_account(session, user_id, account_id)
    # The overview is computed per user (a handful of accounts): one accounting path, the landing page's.
    return next(
        item for item in overview.account_overviews(session, settings, user_id, prices) if item.account.id == account_id
    )
