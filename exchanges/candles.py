"""Candles: the value type, reading exchange CSV exports, and finding gaps in a series."""

import csv
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from exchanges.timeframes import timeframe_duration, timeframe_for_duration

REQUIRED_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
# Binance weeks start on Monday; the Unix epoch fell on a Thursday.
_WEEK_ANCHOR = datetime(1970, 1, 5, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Millisecond timestamps before 2001-09-09 have fewer digits; anything smaller is a seconds timestamp.
_SMALLEST_MS_TIMESTAMP = 1_000_000_000_000


class CandleFileError(ValueError):
    """A candle file that cannot be imported; the message names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class Candle:
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class Gap:
    first_missing: datetime
    last_missing: datetime
    missing_bars: int


def read_candle_csv(path: Path, timeframe: str) -> list[Candle]:
    """Read and validate a whole CSV (timestamp in ms UTC, open, high, low, close, volume).

    Everything is checked before anything is returned, so a bad file never leads to a partial import.
    """
    step = timeframe_duration(timeframe)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CandleFileError(f"{path}: the file is empty")
            columns = _column_indexes(path, header)
            numbered = [(reader.line_num, _parse_row(path, reader.line_num, row, columns)) for row in reader if row]
    except (OSError, UnicodeDecodeError) as exc:
        raise CandleFileError(f"{path}: cannot read the file ({exc.__class__.__name__}: {exc})") from None
    if not numbered:
        raise CandleFileError(f"{path}: the file has a header but no candles")
    _check_series(path, numbered, timeframe, step)
    return [candle for _, candle in numbered]


def find_gaps(open_times: Sequence[datetime], timeframe: str) -> list[Gap]:
    """Missing candles between consecutive open times of a sorted series."""
    step = timeframe_duration(timeframe)
    gaps = []
    for previous, current in itertools.pairwise(open_times):
        missing = int((current - previous) / step) - 1
        if missing > 0:
            gaps.append(Gap(previous + step, current - step, missing))
    return gaps


def _column_indexes(path: Path, header: list[str]) -> dict[str, int]:
    normalized = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in normalized]
    if missing:
        raise CandleFileError(
            f"{path}: missing column(s) {', '.join(missing)}; expected a header with {', '.join(REQUIRED_COLUMNS)}"
        )
    return {name: normalized.index(name) for name in REQUIRED_COLUMNS}


def _parse_row(path: Path, line: int, row: list[str], columns: dict[str, int]) -> Candle:
    where = f"{path}:{line}"
    try:
        cells = {name: row[index].strip() for name, index in columns.items()}
    except IndexError:
        raise CandleFileError(f"{where}: expected {len(columns)} columns, found {len(row)}") from None
    try:
        timestamp_ms = int(cells["timestamp"])
    except ValueError:
        raise CandleFileError(f"{where}: timestamp {cells['timestamp']!r} is not an integer (ms)") from None
    if timestamp_ms < _SMALLEST_MS_TIMESTAMP:
        raise CandleFileError(f"{where}: timestamp {timestamp_ms} looks like seconds; milliseconds expected")
    values = {name: _parse_decimal(where, name, cells[name]) for name in REQUIRED_COLUMNS[1:]}
    candle = Candle(open_time=_EPOCH + timedelta(milliseconds=timestamp_ms), **values)
    _check_prices(where, candle)
    return candle


def _parse_decimal(where: str, name: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CandleFileError(f"{where}: {name} {text!r} is not a number") from None
    if not value.is_finite():
        raise CandleFileError(f"{where}: {name} {text!r} is not a finite number")
    return value


def _check_prices(where: str, candle: Candle) -> None:
    for name in ("open", "high", "low", "close"):
        if getattr(candle, name) <= 0:
            raise CandleFileError(f"{where}: {name} {getattr(candle, name)} must be positive")
    if candle.volume < 0:
        raise CandleFileError(f"{where}: volume {candle.volume} must not be negative")
    if candle.high < max(candle.open, candle.close, candle.low):
        raise CandleFileError(f"{where}: high {candle.high} is below the open, close or low")
    if candle.low > min(candle.open, candle.close):
        raise CandleFileError(f"{where}: low {candle.low} is above the open or close")


def _check_series(path: Path, numbered: list[tuple[int, Candle]], timeframe: str, step: timedelta) -> None:
    anchor = _WEEK_ANCHOR if timeframe == "1w" else _EPOCH
    candles = [candle for _, candle in numbered]
    for index, (line, candle) in enumerate(numbered):
        if (candle.open_time - anchor) % step:
            raise CandleFileError(
                f"{path}:{line}: open time {candle.open_time:%Y-%m-%d %H:%M} UTC is not on a {timeframe} boundary"
            )
        if index and candle.open_time <= candles[index - 1].open_time:
            problem = "duplicates" if candle.open_time == candles[index - 1].open_time else "is before"
            raise CandleFileError(
                f"{path}:{line}: open time {candle.open_time:%Y-%m-%d %H:%M} UTC {problem} the previous row's; "
                "rows must be unique and in ascending time order"
            )
    spacings = Counter(b.open_time - a.open_time for a, b in itertools.pairwise(candles))
    if spacings:
        usual, _ = spacings.most_common(1)[0]
        if usual != step:
            looks_like = timeframe_for_duration(usual) or f"{usual}"
            raise CandleFileError(
                f"{path}: rows are usually {looks_like} apart, not {timeframe}: is the timeframe right?"
            )
