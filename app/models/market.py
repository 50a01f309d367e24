"""The candle store, the candle files imported into it, and the markets fetched from exchanges."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import Amount, JSONDocument, UTCDateTime


class Candle(Model):
    """One OHLCV bar; the primary key makes re-imports idempotent."""

    __tablename__ = "candles"
    __table_args__ = (
        CheckConstraint("high >= low", name="high_not_below_low"),
        CheckConstraint("volume >= 0", name="volume_not_negative"),
    )

    exchange_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    open_time: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    open: Mapped[Decimal] = mapped_column(Amount)
    high: Mapped[Decimal] = mapped_column(Amount)
    low: Mapped[Decimal] = mapped_column(Amount)
    close: Mapped[Decimal] = mapped_column(Amount)
    volume: Mapped[Decimal] = mapped_column(Amount)


class ImportedCandleFile(Model):
    """A bundled candle file as it was imported (its sha256), so that an unchanged file is not read again."""

    __tablename__ = "imported_candle_files"

    file_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    exchange_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int]
    first_open_time: Mapped[datetime] = mapped_column(UTCDateTime)
    last_open_time: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoredMarkets(Model):
    """An exchange's markets as ccxt loaded them (`markets refresh`), replacing the bundled snapshot once stored."""

    __tablename__ = "market_catalogs"

    exchange_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    market_count: Mapped[int]
    # The ccxt `markets` dict, {unified symbol: market}, each with the exchange's raw entry under "info".
    markets: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
