"""All persistent models; importing this package registers every table on the metadata."""

from app.models.analysis import Analysis, BudgetLedgerEntry, ResponseCacheEntry
from app.models.audit import AuditEvent
from app.models.backtests import Backtest, BacktestJournal
from app.models.enums import (
    AccountKind,
    AnalysisStatus,
    BacktestStatus,
    DeliveryStatus,
    LedgerStatus,
    PositionStatus,
    RunStatus,
)
from app.models.market import Candle, ImportedCandleFile, StoredMarkets
from app.models.notifications import NotificationChannel, NotificationDelivery
from app.models.scheduling import OperatorSetting, SchedulerLease, WatchRun
from app.models.trading import Account, Decision, Order, Position, Trade, Watch
from app.models.users import ApiKey, ExchangeCredential, IdempotencyRecord, LlmCredential, User

__all__ = [
    "Account",
    "AccountKind",
    "Analysis",
    "AnalysisStatus",
    "ApiKey",
    "AuditEvent",
    "Backtest",
    "BacktestJournal",
    "BacktestStatus",
    "BudgetLedgerEntry",
    "Candle",
    "Decision",
    "DeliveryStatus",
    "ExchangeCredential",
    "IdempotencyRecord",
    "ImportedCandleFile",
    "LedgerStatus",
    "LlmCredential",
    "NotificationChannel",
    "NotificationDelivery",
    "OperatorSetting",
    "Order",
    "Position",
    "PositionStatus",
    "ResponseCacheEntry",
    "RunStatus",
    "SchedulerLease",
    "StoredMarkets",
    "Trade",
    "User",
    "Watch",
    "WatchRun",
]
