"""Signal requests and their cost: one Analysis per request, budget ledger entries around paid calls."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.enums import AnalysisStatus, LedgerStatus
from app.models.types import Amount, JSONDocument, UTCDateTime, enum_column, utcnow, zero


class Analysis(Model):
    """One signal request: what was asked of which provider, what it cost, and what came back."""

    __tablename__ = "analyses"
    __table_args__ = (
        CheckConstraint("cost_usd >= 0", name="cost_not_negative"),
        Index("ix_analyses_user_created", "user_id", "created_at"),
        # The API's keyset pages (newest first by id): without it a page sorts all of the user's analyses.
        Index("ix_analyses_user_id", "user_id", "id"),
        Index("ix_analyses_watch_created", "watch_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    watch_id: Mapped[int | None] = mapped_column(ForeignKey("watches.id", ondelete="SET NULL"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    exchange_id: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(8))
    # Open time of the last closed candle the analysis saw.
    bar_time: Mapped[datetime] = mapped_column(UTCDateTime)
    signal_source: Mapped[str] = mapped_column(String(80))
    provider: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(64))
    prompt_version: Mapped[str | None] = mapped_column(String(32))
    schema_version: Mapped[str | None] = mapped_column(String(16))
    cache_key: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[AnalysisStatus] = mapped_column(enum_column(AnalysisStatus))
    error_code: Mapped[str | None] = mapped_column(String(48))
    error_message: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(default=0)  # billed at the full input price
    cache_read_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    reasoning_tokens: Mapped[int] = mapped_column(default=0)  # part of output_tokens, billed as output
    cost_usd: Mapped[Decimal] = mapped_column(Amount, default=zero)
    # For a cache hit (cost 0): what the original, paid call cost.
    original_cost_usd: Mapped[Decimal | None] = mapped_column(Amount)
    latency_ms: Mapped[int | None]
    cached: Mapped[bool] = mapped_column(default=False)
    raw_response: Mapped[str | None] = mapped_column(Text)
    signal: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BudgetLedgerEntry(Model):
    """A reservation of worst-case cost before a paid call, settled with the real cost or released."""

    __tablename__ = "budget_ledger_entries"
    __table_args__ = (
        CheckConstraint("reserved_usd >= 0", name="reserved_not_negative"),
        CheckConstraint("settled_usd IS NULL OR settled_usd >= 0", name="settled_not_negative"),
        Index("ix_budget_ledger_user_created", "user_id", "created_at"),
        Index("ix_budget_ledger_watch_created", "watch_id", "created_at"),
        Index("ix_budget_ledger_api_key_created", "api_key_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    watch_id: Mapped[int | None] = mapped_column(ForeignKey("watches.id", ondelete="SET NULL"))
    # The API key the call was made through (None: web UI, CLI or scheduler); its caps count what it reserved.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    analysis_id: Mapped[int | None] = mapped_column(ForeignKey("analyses.id", ondelete="SET NULL"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    status: Mapped[LedgerStatus] = mapped_column(enum_column(LedgerStatus), default=LedgerStatus.RESERVED)
    reserved_usd: Mapped[Decimal] = mapped_column(Amount)
    settled_usd: Mapped[Decimal | None] = mapped_column(Amount)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ResponseCacheEntry(Model):
    """A provider's answer to one exact request (key = sha256 of everything that shapes it; see ai/cache.py)."""

    __tablename__ = "response_cache_entries"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    prompt_version: Mapped[str] = mapped_column(String(32))
    schema_version: Mapped[str] = mapped_column(String(16))
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    problem: Mapped[str | None] = mapped_column(String(32))
    raw: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(default=0)
    cache_read_tokens: Mapped[int] = mapped_column(default=0)
    cache_write_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    reasoning_tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Amount)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
