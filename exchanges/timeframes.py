"""Candle timeframes in ccxt notation and their lengths."""

from datetime import UTC, datetime, timedelta

TIMEFRAME_SECONDS: dict[str, int] = {
    "1m": 60,
    "3m": 3 * 60,
    "5m": 5 * 60,
    "15m": 15 * 60,
    "30m": 30 * 60,
    "1h": 3600,
    "2h": 2 * 3600,
    "4h": 4 * 3600,
    "6h": 6 * 3600,
    "8h": 8 * 3600,
    "12h": 12 * 3600,
    "1d": 86400,
    "3d": 3 * 86400,
    "1w": 7 * 86400,
}


class UnknownTimeframeError(ValueError):
    pass


def timeframe_duration(timeframe: str) -> timedelta:
    """The length of one candle; raises UnknownTimeframeError naming the supported ones."""
    try:
        return timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    except KeyError:
        supported = ", ".join(TIMEFRAME_SECONDS)
        raise UnknownTimeframeError(f"unknown timeframe {timeframe!r} (supported: {supported})") from None


def timeframe_for_duration(duration: timedelta) -> str | None:
    """The timeframe whose candles last exactly `duration`, if there is one."""
    seconds = int(duration.total_seconds())
    return next((tf for tf, length in TIMEFRAME_SECONDS.items() if length == seconds), None)


# Binance's weekly candles open on Mondays 00:00 UTC; 1970-01-01, where every other timeframe's grid starts, was a
# Thursday.
_WEEK_ORIGIN = datetime(1970, 1, 5, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bar_open_at(timeframe: str, moment: datetime) -> datetime:
    """The open time of the `timeframe` bar that contains `moment` (UTC): bars lie on a grid from the Unix epoch, weekly
    ones from a Monday, as exchanges draw them."""
    length = timeframe_duration(timeframe)
    origin = _WEEK_ORIGIN if timeframe == "1w" else _EPOCH
    return origin + ((moment - origin) // length) * length


def last_closed_bar_open(timeframe: str, moment: datetime) -> datetime:
    """The open time of the latest `timeframe` bar that has closed by `moment`."""
    return bar_open_at(timeframe, moment) - timeframe_duration(timeframe)
