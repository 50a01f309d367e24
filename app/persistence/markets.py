"""Market catalogs (precision, minimums, fees): the markets fetched from an exchange and stored (`market_catalogs`),
and the bundled ccxt markets snapshots in `data/markets/`, the offline fallback."""

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import StoredMarkets
from exchanges.markets import MarketCatalog

# The date each bundled snapshot describes the exchange's markets as of (see data/PROVENANCE.md).
SNAPSHOT_DATES_FILE = "snapshot_dates.json"


class UnknownExchangeError(ValueError):
    pass


def bundled_catalog(data_dir: Path, exchange_id: str) -> MarketCatalog:
    """The bundled ccxt markets snapshot of an exchange. Raises `UnknownExchangeError` naming what is bundled."""
    snapshots = data_dir / "markets"
    path = snapshots / f"{exchange_id}_markets_snapshot.json"
    if not path.is_file():
        available = sorted(
            p.name.removesuffix("_markets_snapshot.json") for p in snapshots.glob("*_markets_snapshot.json")
        )
        raise UnknownExchangeError(
            # No folder in the message: it reaches API clients, who must not learn the server's paths.
            f"no markets snapshot for exchange {exchange_id!r} (bundled: {', '.join(available)})"
        )
    return MarketCatalog.from_snapshot(exchange_id, path)


def bundled_snapshot_date(data_dir: Path, exchange_id: str) -> date | None:
    """The date a bundled snapshot describes, when `data/markets/snapshot_dates.json` records it."""
    path = data_dir / "markets" / SNAPSHOT_DATES_FILE
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text(encoding="utf-8")).get(exchange_id)
    return date.fromisoformat(recorded) if recorded else None


@dataclass(frozen=True)
class StoredCatalog:
    catalog: MarketCatalog
    fetched_at: datetime


# Parsed catalogs by (database, exchange, fetch time): a stored catalog holds thousands of markets (megabytes of
# JSON, ~0.5 s to read and parse), is read for every analysis and backtest, and changes only when refreshed. A
# refresh in this process drops the exchange's entries; one elsewhere stores a new fetch time.
_PARSED: dict[tuple[str, str, datetime], MarketCatalog] = {}
_PARSED_LIMIT = 8


def stored_catalog(session: Session, exchange_id: str) -> StoredCatalog | None:
    """The markets last fetched from `exchange_id`, or None when they never were."""
    fetched_at = session.scalar(select(StoredMarkets.fetched_at).where(StoredMarkets.exchange_id == exchange_id))
    if fetched_at is None:
        return None
    key = (_database(session), exchange_id, fetched_at)
    catalog = _PARSED.get(key)
    if catalog is None:
        markets = session.scalar(select(StoredMarkets.markets).where(StoredMarkets.exchange_id == exchange_id))
        catalog = MarketCatalog.from_ccxt(exchange_id, markets or {})
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = catalog
    return StoredCatalog(catalog, fetched_at)


@dataclass(frozen=True)
class StoredMarketsInfo:
    exchange_id: str
    fetched_at: datetime
    market_count: int


def stored_markets_info(session: Session) -> list[StoredMarketsInfo]:
    """Which exchanges have stored markets, when they were fetched and how many there are (no markets parsed)."""
    rows = session.execute(
        select(StoredMarkets.exchange_id, StoredMarkets.fetched_at, StoredMarkets.market_count).order_by(
            StoredMarkets.exchange_id
        )
    )
    return [StoredMarketsInfo(exchange_id, fetched_at, count) for exchange_id, fetched_at, count in rows]


def store_catalog(session: Session, exchange_id: str, markets: dict[str, dict[str, Any]], fetched_at: datetime) -> None:
    """Replace the stored markets of `exchange_id`. The caller commits."""
    for key in [key for key in _PARSED if key[:2] == (_database(session), exchange_id)]:
        del _PARSED[key]
    row = session.get(StoredMarkets, exchange_id)
    if row is None:
        session.add(
            StoredMarkets(exchange_id=exchange_id, fetched_at=fetched_at, market_count=len(markets), markets=markets)
        )
    else:
        row.fetched_at, row.market_count, row.markets = fetched_at, len(markets), markets
    session.flush()


def _database(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)
