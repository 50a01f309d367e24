"""Enumerations that exist only in the application's records (domain ones live in ai/, risk/, exchanges/)."""

from enum import StrEnum

from ai.outcome import AnalysisStatus

__all__ = [
    "AccountKind",
    "AnalysisStatus",
    "BacktestStatus",
    "DeliveryStatus",
    "LedgerStatus",
    "PositionStatus",
    "RunStatus",
]


class AccountKind(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class LedgerStatus(StrEnum):
    RESERVED = "reserved"
    SETTLED = "settled"
    RELEASED = "released"


class PositionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class BacktestStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
