"""Candles for analysis: from the candle store (offline) or an exchange's public market data (ccxt)."""

from datetime import datetime

import pandas as pd
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.candle_store import market_catalog
from app.config import Settings
from app.models import Candle as CandleRecord
from exchanges.candles import Candle
from exchanges.market_data import fetch_closed_candles, public_exchange

FRAME_COLUMNS = ["open", "high", "low", "close", "volume"]
# The context's higher-timeframe lines come from this timeframe when the store has it.
HIGHER_TIMEFRAME = {"15m": "4h", "30m": "4h", "1h": "1d", "2h": "1d", "4h": "1d", "6h": "1w", "12h": "1w", "1d": "1w"}


class NotEnoughCandlesError(ValueError):
    pass


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


def candles_frame(candles: list[Candle]) -> pd.DataFrame:
    """Candles read from a file or an exchange, as the float frame indicators and backtests use."""
    return _frame([(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in candles])


def exchange_candles(
    settings: Settings, market: str, symbol: str, timeframe: str, limit: int, now: datetime
) -> pd.DataFrame:
    """Closed candles from `ccxt:EXCHANGE` public market data; a bundled markets snapshot is used when shipped."""
    exchange_id = market.partition(":")[2] or "binance"
    snapshot = settings.data_dir / "markets" / f"{exchange_id}_markets_snapshot.json"
    markets = market_catalog(settings.data_dir, exchange_id).raw_markets if snapshot.is_file() else None
    candles = fetch_closed_candles(public_exchange(exchange_id, markets), symbol, timeframe, limit, now)
    return candles_frame(candles)


def require_bars(frame: pd.DataFrame, needed: int, what: str) -> None:
    if len(frame) < needed:
        raise NotEnoughCandlesError(
            f"not enough candles for {what}: {len(frame)} available, {needed} needed "
            "(import more with `flask --app wsgi import-candles`, or use --market ccxt:binance)"
        )


def _series(exchange_id: str, symbol: str, timeframe: str) -> Select:
    return select(
        CandleRecord.open_time,
        CandleRecord.open,
        CandleRecord.high,
        CandleRecord.low,
        CandleRecord.close,
        CandleRecord.volume,
    ).where(CandleRecord.exchange_id == exchange_id, CandleRecord.symbol == symbol, CandleRecord.timeframe == timeframe)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["open_time", *FRAME_COLUMNS])
    frame["open_time"] = pd.to_datetime(frame["open_time"], utc=True)
    frame = frame.set_index("open_time")
    return frame.astype(float)
