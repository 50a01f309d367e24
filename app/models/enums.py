"""Enumerations that exist only in the application's records (domain ones live in ai/, risk/, exchanges/)."""

from enum import StrEnum


class AccountKind(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class AnalysisStatus(StrEnum):
    OK = "ok"  # a validated signal
    INVALID = "invalid"  # the provider answered, the answer failed validation: HOLD, nothing executes
    FAILED = "failed"  # no usable answer (network, provider error, cache miss in replay)
    REFUSED = "refused"  # not attempted: the budget did not allow it


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
