"""Which candle files were imported, as what (sha256 of the bytes), so an unchanged file need not be read again."""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Candle, ImportedCandleFile
from app.persistence.candles import ImportReport


def unchanged_import(
    session: Session, file_name: str, exchange_id: str, symbol: str, timeframe: str, sha256: str
) -> ImportedCandleFile | None:
    """The record of `file_name` imported with exactly these bytes, if its candles are all still stored; else None
    (never imported, changed since, or candles deleted since: the file must be read)."""
    record = session.get(ImportedCandleFile, (file_name, exchange_id, symbol, timeframe))
    if record is None or record.sha256 != sha256:
        return None
    stored = session.scalar(
        select(func.count()).where(
            Candle.exchange_id == exchange_id,
            Candle.symbol == symbol,
            Candle.timeframe == timeframe,
            Candle.open_time.between(record.first_open_time, record.last_open_time),
        )
    )
    return record if (stored or 0) >= record.row_count else None


def record_import(session: Session, file_name: str, sha256: str, report: ImportReport, imported_at: datetime) -> None:
    """Remember that `file_name` (these bytes) was imported as `report` says. The caller commits."""
    key = (file_name, report.exchange_id, report.symbol, report.timeframe)
    record = session.get(ImportedCandleFile, key)
    if record is None:
        record = ImportedCandleFile(
            file_name=file_name, exchange_id=report.exchange_id, symbol=report.symbol, timeframe=report.timeframe
        )
        session.add(record)
    record.sha256 = sha256
    record.row_count = report.rows_read
    record.first_open_time = report.first
    record.last_open_time = report.last
    record.imported_at = imported_at
    session.flush()
