"""Market catalogs (precision, minimums, fees) of the exchanges Steadyhand knows offline: the bundled ccxt markets
snapshots in `data/markets/`."""

from pathlib import Path

from exchanges.markets import MarketCatalog


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
            f"no markets snapshot for exchange {exchange_id!r} in {snapshots} (available: {', '.join(available)})"
        )
    return MarketCatalog.from_snapshot(exchange_id, path)
