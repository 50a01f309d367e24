"""Hard spending caps: reserve the worst case before a paid call, settle with the real cost, release on failure.

The rules live here; the storage (one database transaction per reservation) is the app's `BudgetLedger`.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class BudgetCaps:
    """USD limits; None means no limit of that kind. `key_daily` and `key_monthly` are the caps of the API key a
    call is made through (they apply with the user's caps, never instead of them)."""

    per_request: Decimal | None = None
    user_daily: Decimal | None = None
    user_monthly: Decimal | None = None
    watch_daily: Decimal | None = None
    key_daily: Decimal | None = None
    key_monthly: Decimal | None = None


@dataclass(frozen=True)
class BudgetScope:
    """Whose spending a call counts toward: always the user's; also a watch's and an API key's when it runs for one."""

    user_id: int
    watch_id: int | None = None
    api_key_id: int | None = None


class BudgetExceededError(Exception):
    """A call refused before it was made. The message shows the cap, what is already spent and the estimate."""

    code = "BUDGET_EXCEEDED"

    def __init__(self, cap_name: str, cap: Decimal, spent: Decimal, estimate: Decimal) -> None:
        self.cap_name, self.cap, self.spent, self.estimate = cap_name, cap, spent, estimate
        super().__init__(
            f"BUDGET_EXCEEDED: {cap_name} cap {_usd(cap)}, already spent or reserved {_usd(spent)}, "
            f"this call could cost up to {_usd(estimate)}"
        )

    def values(self) -> dict[str, str]:
        """The numbers behind the refusal, JSON-ready (USD amounts as plain decimal strings, e.g. "0.0006")."""
        return {
            "cap_name": self.cap_name,
            "cap_usd": _plain(self.cap),
            "spent_usd": _plain(self.spent),
            "estimate_usd": _plain(self.estimate),
        }


def _usd(amount: Decimal) -> str:
    return f"${amount:.6f}"


def _plain(amount: Decimal) -> str:
    """`0.0006`, not `0.0006000000` (a database scale) nor `6E-4`."""
    if not amount.is_finite():
        return str(amount)
    return format(amount.normalize(), "f")


def check_request_cap(caps: BudgetCaps, estimate: Decimal) -> None:
    if caps.per_request is not None and estimate > caps.per_request:
        raise BudgetExceededError("per-request", caps.per_request, Decimal(0), estimate)


def check_period_cap(cap_name: str, cap: Decimal | None, spent: Decimal, estimate: Decimal) -> None:
    if cap is not None and spent + estimate > cap:
        raise BudgetExceededError(cap_name, cap, spent, estimate)


class BudgetLedger(Protocol):
    def reserve(
        self, scope: BudgetScope, caps: BudgetCaps, amount: Decimal, provider: str, model: str, now: datetime
    ) -> int:
        """Atomically check every cap and record a reservation; raises BudgetExceededError. Returns its id."""
        ...

    def settle(self, reservation_id: int, actual: Decimal, now: datetime) -> None: ...

    def release(self, reservation_id: int, now: datetime) -> None: ...
