"""Pure, deterministic risk decisions and position sizing. No I/O, Flask-free."""

from risk.config import RiskConfig
from risk.decide import decide
from risk.limits import next_trading_state
from risk.states import TradingState
from risk.stops import StopUpdate, exit_quantity, update_stops
from risk.values import (
    AccountState,
    Code,
    Decision,
    MarketLimits,
    OpenPosition,
    OrderSpec,
    Reason,
    SignalLike,
)

__all__ = [
    "AccountState",
    "Code",
    "Decision",
    "MarketLimits",
    "OpenPosition",
    "OrderSpec",
    "Reason",
    "RiskConfig",
    "SignalLike",
    "StopUpdate",
    "TradingState",
    "decide",
    "exit_quantity",
    "next_trading_state",
    "update_stops",
]
