"""The candle store: importing candles (idempotent, all-or-nothing, with a report of what was found) and reading
them back as the float frames indicators and backtests use."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from app.models import Candle as CandleRecord
from app.persistence.bulk import insert_ignoring_duplicates
from exchanges.candles import Candle, Gap, find_gaps
from exchanges.timeframes import timeframe_duration

# SQLite keeps NUMERIC as a float: a stored value may differ from the file in the 15th digit.
_SAME_VALUE_TOLERANCE = Decimal("1e-12")


@dataclass
class ImportReport:
    exchange_id: str
    symbol: str
    timeframe: str
    rows_read: int
    inserted: int
    already_stored: int
    conflicting: list[datetime]
    first: datetime
    last: datetime
    zero_volume_bars: int
    gaps: list[Gap] = field(default_factory=list)
    # Candles of the file left out because they had not closed yet at `checked_at` (open time + timeframe later).
    unclosed_dropped: int = 0
    checked_at: datetime | None = None

    @property
    def missing_bars(self) -> int:
        return sum(gap.missing_bars for gap in self.gaps)


def import_candles(
    session: Session, exchange_id: str, symbol: str, timeframe: str, candles: Sequence[Candle]
) -> ImportReport:
    """Add the candles not yet stored; report stored ones whose values differ, and the gaps.

    The caller commits: everything is written in its transaction or nothing is.
    """
    first, last = candles[0].open_time, candles[-1].open_time
    in_file_span = _series(exchange_id, symbol, timeframe).where(CandleRecord.open_time.between(first, last))
    stored = {row.open_time: row for row in session.execute(in_file_span)}
    new_rows = [
        {
            "exchange_id": exchange_id,
            "symbol": symbol,
            "timeframe": timeframe,
            "open_time": c.open_time,
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
        }
        for c in candles
        if c.open_time not in stored
    ]
    # A concurrent import of the same file must not fail on rows the other one just added.
    insert_ignoring_duplicates(session, CandleRecord, new_rows)
    conflicting = [c.open_time for c in candles if c.open_time in stored and not _same(stored[c.open_time], c)]
    series = sorted({*stored, *(c.open_time for c in candles)})
    return ImportReport(
        exchange_id=exchange_id,
        symbol=symbol,
        timeframe=timeframe,
        rows_read=len(candles),
        inserted=len(new_rows),
        already_stored=len(candles) - len(new_rows),
        conflicting=conflicting,
        first=first,
        last=last,
        zero_volume_bars=sum(1 for c in candles if c.volume == 0),
        gaps=find_gaps(series, timeframe),
    )


def _same(record: Row[datetime, Decimal, Decimal, Decimal, Decimal, Decimal], candle: Candle) -> bool:
    pairs = (
        (record.open, candle.open),
        (record.high, candle.high),
        (record.low, candle.low),
        (record.close, candle.close),
        (record.volume, candle.volume),
    )
    return all(abs(a - b) <= _SAME_VALUE_TOLERANCE * max(abs(a), abs(b), 1) for a, b in pairs)


FRAME_COLUMNS = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class StoredSeries:
    """What the store holds of one series: the first and last bar open times and the number of bars."""

    exchange_id: str
    symbol: str
    timeframe: str
    bars: int
    first: datetime
    last: datetime

    @property
    def last_close(self) -> datetime:
        return self.last + timeframe_duration(self.timeframe)


def stored_series(session: Session, exchange_id: str, symbol: str, timeframe: str) -> StoredSeries | None:
    """The stored span of one series, or None when nothing is stored."""
    row = session.execute(
        select(func.count(), func.min(CandleRecord.open_time), func.max(CandleRecord.open_time)).where(
            CandleRecord.exchange_id == exchange_id, CandleRecord.symbol == symbol, CandleRecord.timeframe == timeframe
        )
    ).one()
    if not row[0]:
        return None
    return StoredSeries(exchange_id, symbol, timeframe, row[0], _aware(row[1]), _aware(row[2]))


def coverage(session: Session) -> list[StoredSeries]:
    """Every stored series with its span, by symbol and timeframe."""
    rows = session.execute(
        select(
            CandleRecord.exchange_id,
            CandleRecord.symbol,
            CandleRecord.timeframe,
            func.count(),
            func.min(CandleRecord.open_time),
            func.max(CandleRecord.open_time),
        )
        .group_by(CandleRecord.exchange_id, CandleRecord.symbol, CandleRecord.timeframe)
        .order_by(CandleRecord.symbol, CandleRecord.timeframe)
    )
    return [StoredSeries(e, s, t, n, _aware(first), _aware(last)) for e, s, t, n, first, last in rows]


def _aware(value: datetime) -> datetime:
    # Aggregates bypass the column type on SQLite, which then hands back naive UTC datetimes (or strings).
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def stored_candles(
    session: Session, exchange_id: str, symbol: str, timeframe: str, limit: int, until: datetime | None = None
) -> pd.DataFrame:
    """The last `limit` stored candles (up to `until`, inclusive), oldest first, as a float frame."""
    query = _series(exchange_id, symbol, timeframe)
    if until is not None:
        query = query.where(CandleRecord.open_time <= until)
    rows = session.execute(query.order_by(CandleRecord.open_time.desc()).limit(limit)).all()
    return _frame([tuple(row) for row in reversed(rows)])


def stored_range(session: Session, exchange_id: str, symbol: str, timeframe: str) -> pd.DataFrame:
    """Every stored candle of a series, oldest first, as a float frame (for backtests)."""
    rows = session.execute(_series(exchange_id, symbol, timeframe).order_by(CandleRecord.open_time))
    return _frame([tuple(row) for row in rows])


def candles_between(
    session: Session, exchange_id: str, symbol: str, timeframe: str, after: datetime, until: datetime
) -> list[Candle]:
    """The stored candles opened after `after` and up to `until` (inclusive), oldest first, with exact prices."""
    query = _series(exchange_id, symbol, timeframe).where(
        CandleRecord.open_time > after, CandleRecord.open_time <= until
    )
    return [Candle(*row) for row in session.execute(query.order_by(CandleRecord.open_time))]


def candles_frame(candles: list[Candle]) -> pd.DataFrame:
    """Candles read from a file or an exchange, as the float frame indicators and backtests use."""
    return _frame([(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in candles])


def _series(
    exchange_id: str, symbol: str, timeframe: str
) -> Select[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]:
    return select(
        CandleRecord.open_time,
        CandleRecord.open,
        CandleRecord.high,
        CandleRecord.low,
        CandleRecord.close,
        CandleRecord.volume,
    ).where(CandleRecord.exchange_id == exchange_id, CandleRecord.symbol == symbol, CandleRecord.timeframe == timeframe)


def _frame(rows: Sequence[tuple[object, ...]]) -> pd.DataFrame:
    """Rows of (open time, open, high, low, close, volume) as a float frame indexed by UTC open time."""
    frame = pd.DataFrame(rows, columns=["open_time", *FRAME_COLUMNS])
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True)
    frame = frame.set_index("open_time")
    return frame.astype(float)
