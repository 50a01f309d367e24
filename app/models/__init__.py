"""All persistent models; importing this package registers every table on the metadata."""

from app.models.analysis import Analysis, BudgetLedgerEntry, ResponseCacheEntry
from app.models.audit import AuditEvent
from app.models.backtests import Backtest, BacktestJournal
from app.models.enums import AccountKind, AnalysisStatus, BacktestStatus, LedgerStatus, PositionStatus
from app.models.market import Candle, ImportedCandleFile, StoredMarkets
from app.models.trading import Account, Decision, Order, Position, Trade, Watch
from app.models.users import ApiKey, ExchangeCredential, LlmCredential, User

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
    "ExchangeCredential",
    "ImportedCandleFile",
    "LedgerStatus",
    "LlmCredential",
    "Order",
    "Position",
    "PositionStatus",
    "ResponseCacheEntry",
    "StoredMarkets",
    "Trade",
    "User",
    "Watch",
]
