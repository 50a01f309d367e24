"""Column types shared by the models: UTC datetimes, decimal money, string-stored enums, JSON."""

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import JSON, DateTime, Enum, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Prices, quantities and dollar amounts. Scale 10 keeps LLM per-call costs (fractions of a cent) and
# 8-decimal crypto quantities exact on PostgreSQL; SQLite stores NUMERIC as a float, which keeps
# about 15 significant digits and is returned as a Decimal rounded to this scale.
DECIMAL_PRECISION = 28
DECIMAL_SCALE = 10
Amount = Numeric(DECIMAL_PRECISION, DECIMAL_SCALE)

JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones: store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given: Steadyhand stores UTC-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum_class: type[StrEnum], length: int = 16) -> Enum:
    """Store an enum's values as VARCHAR + CHECK: readable in SQL, no native PostgreSQL type to migrate."""
    return Enum(
        enum_class,
        name=enum_class.__name__.lower(),
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def zero() -> Decimal:
    return Decimal(0)
