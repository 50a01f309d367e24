"""JSON shapes every API resource shares: the error body, record ids in paths, cursor pages."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.errors import shown

# Ids are 32-bit integers on every backend; a larger one cannot name a record (and must not reach the database).
RecordId = Annotated[int, Field(ge=1, le=2_147_483_647)]
# In a JSON body an id is a JSON integer: `true` or "3" is refused (query and path values arrive as text).
BodyId = Annotated[int, Field(ge=1, le=2_147_483_647, strict=True)]
PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX = 50, 200


def optional_amount(value: Decimal | None) -> str | None:
    """An amount as a user would type it (`50`, not `50.0000000000`), or None."""
    return None if value is None else shown(value)


def optional_time(value: datetime | None) -> str | None:
    """ISO-8601 (UTC), or None."""
    return None if value is None else value.isoformat()


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable, e.g. INVALID_INPUT, BUDGET_EXCEEDED")
    message: str = Field(description="one line for a person, naming the field and the value")
    details: dict[str, Any] = Field(description="the numbers and names behind the message; `field` when one is meant")


class ErrorOut(BaseModel):
    """Every refusal and failure of /api/v1, whatever its status."""

    error: ErrorBody


class RequestModel(BaseModel):
    """A request body or query: an unknown field is refused (a typo such as `max_cost` must not be ignored)."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(RequestModel):
    """Cursor pagination, newest first: pass a page's `next_cursor` as `cursor` for the page after it."""

    limit: int = Field(PAGE_LIMIT_DEFAULT, ge=1, le=PAGE_LIMIT_MAX, description="items per page")
    cursor: str | None = Field(None, max_length=64, description="`next_cursor` of the previous page")


Usd = Annotated[Decimal, Field(gt=0, le=1_000_000, max_digits=16, decimal_places=6, description="an amount in USD")]
RuleParams = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], Annotated[str, Field(max_length=100)]],
    Field(max_length=30, description='a rules strategy\'s parameters, e.g. {"low": "25"}'),
]
