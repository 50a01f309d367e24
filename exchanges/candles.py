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
# Unix timestamps are told apart by magnitude: from 2001-09-09 to 2286-11-20 a timestamp in seconds has 10 digits,
# in milliseconds 13, in microseconds 16 (Binance's public spot files since 2025) and in nanoseconds 19.
TIMESTAMP_UNITS = {"seconds": 1, "milliseconds": 10**3, "microseconds": 10**6, "nanoseconds": 10**9}
_EARLIEST_SECONDS = 1_000_000_000  # 2001-09-09 01:46:40 UTC
_LATEST_SECONDS = 10_000_000_000  # 2286-11-20 17:46:40 UTC (exclusive)


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
    """Read and validate a whole CSV (timestamp = Unix open time, open, high, low, close, volume).

    The timestamp unit (seconds, milliseconds, microseconds or nanoseconds) is recognised from the first row's
    magnitude and every row must use it. A UTF-8 byte order mark (Excel) is skipped. Everything is checked before
    anything is returned, so a bad file never leads to a partial import.
    """
    step = timeframe_duration(timeframe)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CandleFileError(f"{path}: the file is empty")
            columns = _column_indexes(path, header)
            numbered: list[tuple[int, Candle]] = []
            unit: str | None = None
            for row in reader:
                if row:
                    candle, unit = _parse_row(path, reader.line_num, row, columns, unit)
                    numbered.append((reader.line_num, candle))
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


def _parse_row(
    path: Path, line: int, row: list[str], columns: dict[str, int], file_unit: str | None
) -> tuple[Candle, str]:
    """One row as a candle, and its timestamp unit; `file_unit` is the unit of the rows before it (None: first)."""
    where = f"{path}:{line}"
    try:
        cells = {name: row[index].strip() for name, index in columns.items()}
    except IndexError:
        raise CandleFileError(f"{where}: expected {len(columns)} columns, found {len(row)}") from None
    try:
        timestamp = int(cells["timestamp"])
    except ValueError:
        raise CandleFileError(f"{where}: timestamp {cells['timestamp']!r} is not an integer (Unix time)") from None
    unit = _timestamp_unit(where, timestamp)
    if file_unit is not None and unit != file_unit:
        raise CandleFileError(
            f"{where}: timestamp {timestamp} is in {unit}, but the file's first row is in {file_unit}; "
            "every row must use the same unit"
        )
    values = {name: _parse_decimal(where, name, cells[name]) for name in REQUIRED_COLUMNS[1:]}
    open_time = _EPOCH + timedelta(microseconds=timestamp * 10**6 // TIMESTAMP_UNITS[unit])
    candle = Candle(open_time=open_time, **values)
    _check_prices(where, candle)
    return candle, unit


def _timestamp_unit(where: str, timestamp: int) -> str:
    """The unit of a Unix timestamp by its magnitude; a value in none of the units' ranges is an error."""
    for unit, per_second in TIMESTAMP_UNITS.items():
        if _EARLIEST_SECONDS * per_second <= timestamp < _LATEST_SECONDS * per_second:
            return unit
    raise CandleFileError(
        f"{where}: timestamp {timestamp} is out of range: expected Unix time in seconds (10 digits), milliseconds "
        "(13), microseconds (16) or nanoseconds (19) between 2001-09-09 and 2286-11-20"
    )


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
