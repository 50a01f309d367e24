"""Importing candles into the database: idempotent, all-or-nothing, with a report of what was found."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from app.db_writes import insert_ignoring_duplicates
from app.models import Candle as CandleRecord
from exchanges.candles import Candle, Gap, find_gaps
from exchanges.markets import MarketCatalog

# SQLite keeps NUMERIC as a float: a stored value may differ from the file in the 15th digit.
_SAME_VALUE_TOLERANCE = Decimal("1e-12")


class UnknownExchangeError(ValueError):
    pass


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

    @property
    def missing_bars(self) -> int:
        return sum(gap.missing_bars for gap in self.gaps)


def market_catalog(data_dir: Path, exchange_id: str) -> MarketCatalog:
    """The bundled ccxt markets snapshot of an exchange, so symbols and precision are known offline."""
    snapshots = data_dir / "markets"
    path = snapshots / f"{exchange_id}_markets_snapshot.json"
    if not path.is_file():
        available = sorted(
            p.name.removesuffix("_markets_snapshot.json") for p in snapshots.glob("*_markets_snapshot.json")
        )
        raise UnknownExchangeError(
            f"no markets snapshot for exchange {exchange_id!r} in {snapshots} (available: {', '.join(available)})"
        )
    return MarketCatalog.from_snapshot(exchange_id, path)


def import_candles(
    session: Session, exchange_id: str, symbol: str, timeframe: str, candles: Sequence[Candle]
) -> ImportReport:
    """Add the candles not yet stored; report stored ones whose values differ, and the gaps.

    The caller commits: everything is written in its transaction or nothing is.
    """
    first, last = candles[0].open_time, candles[-1].open_time
    stored = {
        row.open_time: row
        for row in session.execute(
            select(
                CandleRecord.open_time,
                CandleRecord.open,
                CandleRecord.high,
                CandleRecord.low,
                CandleRecord.close,
                CandleRecord.volume,
            ).where(
                CandleRecord.exchange_id == exchange_id,
                CandleRecord.symbol == symbol,
                CandleRecord.timeframe == timeframe,
                CandleRecord.open_time.between(first, last),
            )
        )
    }
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


def _same(record: Row, candle: Candle) -> bool:
    pairs = (
        (record.open, candle.open),
        (record.high, candle.high),
        (record.low, candle.low),
        (record.close, candle.close),
        (record.volume, candle.volume),
    )
    return all(abs(a - b) <= _SAME_VALUE_TOLERANCE * max(abs(a), abs(b), 1) for a, b in pairs)
