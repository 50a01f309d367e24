"""The kill switch: stop new positions at the next order, on every account (the operator's global switch) or on one
(its owner's, the account's HALTED trading state).

A kill switch never traps a position: exits, stops and take profits still run. The global switch is an operator
setting (stored, so it survives restarts) and audited without an account; an account's switch is its trading state
HALTED with an audited reason, released only by `accounts.resume_trading` (`account resume ID`). The caller commits.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import ConflictError, InvalidInputError
from app.models import Account, OperatorSetting, User
from app.services import audit, notifications
from app.services.accounts import TRADING_STATE_EVENT, get_account
from risk import TradingState
from risk.values import Reason

GLOBAL_KEY = "kill_switch"
GLOBAL_EVENT = "kill_switch.global"
KILL_SWITCH = "KILL_SWITCH"  # the reason code of an opening refused by the global switch
MAX_REASON = 500
MAX_BY = 120  # OperatorSetting.updated_by


@dataclass(frozen=True)
class KillSwitchState:
    """The global switch as last set: engaged (since, by whom, why) or released (since, by whom; no reason)."""

    engaged: bool
    reason: str | None
    since: datetime
    by: str


@dataclass(frozen=True)
class HaltedAccount:
    account: Account
    owner_email: str
    reason: str | None  # the audited reason, None when the account was halted before reasons were recorded


def global_state(session: Session) -> KillSwitchState | None:
    """The global switch, or None when it was never set."""
    row = session.get(OperatorSetting, GLOBAL_KEY)
    if row is None or not isinstance(row.value, dict):
        return None
    value = row.value
    return KillSwitchState(
        engaged=bool(value.get("engaged")),
        reason=value.get("reason"),
        since=datetime.fromisoformat(value["since"]),
        by=str(value.get("by") or row.updated_by or "?"),
    )


def engage_global(session: Session, reason: str, by: str, now: datetime) -> KillSwitchState:
    """Refuse every new position on every account from the next order on; audited. Raises `ConflictError` (field
    `kill_switch`) when it is already engaged, `InvalidInputError` for an empty or too long reason or name."""
    reason, by = _text("reason", reason, MAX_REASON), _text("by", by, MAX_BY)
    current = global_state(session)
    if current is not None and current.engaged:
        raise ConflictError(f"the global kill switch is already engaged ({describe(current)})", field="kill_switch")
    state = KillSwitchState(True, reason, now, by)
    _store(session, state)
    audit.record(
        session,
        GLOBAL_EVENT,
        f"ENGAGED by {by}: {reason}",
        user_id=None,
        details={"engaged": True, "reason": reason, "by": by},
        at=now,
    )
    return state


def release_global(session: Session, by: str, now: datetime) -> KillSwitchState:
    """Let accounts open positions again (each account's own state still applies); audited. Raises
    `ConflictError` (field `kill_switch`) when the switch is not engaged."""
    by = _text("by", by, MAX_BY)
    current = global_state(session)
    if current is None or not current.engaged:
        raise ConflictError("the global kill switch is not engaged", field="kill_switch")
    state = KillSwitchState(False, None, now, by)
    _store(session, state)
    audit.record(
        session,
        GLOBAL_EVENT,
        f"RELEASED by {by} (engaged {current.since:%Y-%m-%d %H:%M} UTC by {current.by}: {current.reason})",
        user_id=None,
        details={"engaged": False, "by": by, "was": {"reason": current.reason, "by": current.by}},
        at=now,
    )
    return state


def describe(state: KillSwitchState) -> str:
    """`since 2024-01-12 15:30 UTC by ops: exchange incident` (engaged) or `released ... by ops`."""
    if state.engaged:
        return f"since {state.since:%Y-%m-%d %H:%M} UTC by {state.by}: {state.reason}"
    return f"released {state.since:%Y-%m-%d %H:%M} UTC by {state.by}"


def opening_refusal(session: Session) -> Reason | None:
    """The coded reason a new position is refused while the global switch is engaged; None when it is not."""
    state = global_state(session)
    if state is None or not state.engaged:
        return None
    return Reason(
        KILL_SWITCH,
        f"the global kill switch is engaged {describe(state)}: no new positions, exits only",
        {"by": state.by, "since": state.since.isoformat(), "reason": state.reason or ""},
    )


def engage_account(session: Session, user_id: int, account_id: int, reason: str, now: datetime) -> Account:
    """Halt one of the user's accounts (HALTED: no new positions, exits still run) with the reason audited and the
    owner notified; `account resume ID` releases it. Raises `NotFoundError` for someone else's account and
    `ConflictError` (field `trading_state`) when it is already HALTED."""
    reason = _text("reason", reason, MAX_REASON)
    account = get_account(session, user_id, account_id)
    if account.trading_state is TradingState.HALTED:
        raise ConflictError(f"account #{account.id} is already HALTED", field="trading_state")
    previous = account.trading_state
    message = f"{TradingState.HALTED.value}: kill switch: {reason}"
    account.trading_state = TradingState.HALTED
    audit.for_account(
        session, account, TRADING_STATE_EVENT, message, previous_state=previous.value, engaged_at=now.isoformat()
    )
    notifications.notify(
        session,
        account.user_id,
        TRADING_STATE_EVENT,
        {"account_id": account.id, "trading_state": TradingState.HALTED.value, "message": message},
        now=now,
    )
    return account


def halted_accounts(session: Session) -> list[HaltedAccount]:
    """Every HALTED account of every user, oldest first, with why it stopped."""
    rows = session.execute(
        select(Account, User.email)
        .join(User, User.id == Account.user_id)
        .where(Account.trading_state == TradingState.HALTED)
        .order_by(Account.id)
    ).all()
    halted = []
    for account, email in rows:
        event = audit.latest(session, account.id, TRADING_STATE_EVENT)
        reason = event.message.removeprefix(f"{TradingState.HALTED.value}: ") if event else None
        halted.append(HaltedAccount(account, email, reason))
    return halted


def _store(session: Session, state: KillSwitchState) -> None:
    value = {"engaged": state.engaged, "reason": state.reason, "since": state.since.isoformat(), "by": state.by}
    row = session.get(OperatorSetting, GLOBAL_KEY)
    if row is None:
        session.add(OperatorSetting(key=GLOBAL_KEY, value=value, updated_at=state.since, updated_by=state.by))
    else:
        row.value = value
        row.updated_at = state.since
        row.updated_by = state.by
    session.flush()


def _text(field: str, value: str, limit: int) -> str:
    text = " ".join((value or "").split())
    if not text:
        raise InvalidInputError(f"{field} must not be empty", field=field)
    if len(text) > limit:
        raise InvalidInputError(f"{field} must be at most {limit} characters, got {len(text)}", field=field)
    return text
