"""Trading states of an account, as the risk manager enforces them."""

from enum import StrEnum


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"  # opens and closes positions
    REDUCING = "REDUCING"  # only closes: after the daily loss limit, or set by the user
    HALTED = "HALTED"  # opens nothing: the drawdown kill switch, or set by the user
