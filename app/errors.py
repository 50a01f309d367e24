"""The one error model of the service layer: every use-case failure a front end must show is a `ServiceError`.

Front ends handle the family once each: the CLI prints `message` on one line and exits 1; the API answers
`{"error": {"code", "message", "details"}}` with `http_status`; pages show a form error, a flash or a 404 page.
Messages name fields and values as a user writes them (`balance must be a number, got "abc"`), never CLI flags.
"""

from decimal import Decimal
from typing import Any


class ServiceError(Exception):
    """A use-case refused or failed in a way the caller can act on.

    `code`: stable, machine-readable (e.g. `INVALID_INPUT`); `field`: the input it concerns, if one does;
    `details`: JSON-ready numbers and names behind the message.
    """

    code = "SERVICE_ERROR"
    http_status = 400

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = dict(details or {})
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, Any]:
        details = {**self.details, **({"field": self.field} if self.field else {})}
        return {"error": {"code": self.code, "message": self.message, "details": details}}


class InvalidInputError(ServiceError):
    code = "INVALID_INPUT"
    http_status = 422


class NotFoundError(ServiceError):
    """Missing, or someone else's: the answer is the same, so nobody learns what exists."""

    code = "NOT_FOUND"
    http_status = 404


class ConflictError(ServiceError):
    code = "CONFLICT"
    http_status = 409


class ForbiddenError(ServiceError):
    code = "FORBIDDEN"
    http_status = 403


class BudgetRefusedError(ServiceError):
    """A paid call or run whose worst case does not fit under a cap."""

    code = "BUDGET_EXCEEDED"
    http_status = 402

    def __init__(
        self, message: str, *, cap: Decimal, spent: Decimal, estimate: Decimal, field: str | None = None
    ) -> None:
        super().__init__(
            message,
            field=field,
            details={"cap_usd": shown(cap), "spent_usd": shown(spent), "estimate_usd": shown(estimate)},
        )


def shown(value: object) -> str:
    """A value as a user would type it: `50`, not `Decimal('50')` or `50.0000000000`."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return format(value.normalize(), "f")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
