"""Whether a new watch's runs will find their candles where the scheduler reads them: refused when they never could,
warned when the replay has too little history yet."""

from datetime import timedelta

from sqlalchemy.orm import Session

from ai.indicators import WARMUP_BARS
from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, AccountKind
from app.services import markets, system_clock
from app.services.replay import replay_market


def market_data_warnings(
    session: Session, settings: Settings, account: Account | None, exchange_id: str, symbol: str, timeframe: str
) -> tuple[str, ...]:
    """The warnings for a new watch's market data; refuses (`InvalidInputError` naming the field) a watch whose runs
    could never find candles where the scheduler will read them (the replay or the candle store, when its account is
    not live: see `watch_runs.market_for`). On the replay, warns when it has too little history yet for the
    indicators, and until when (its runs fail until then)."""
    if account is not None and account.kind is AccountKind.LIVE:
        return ()  # read from the account's own exchange, live: nothing to check offline
    market_name = settings.scheduler.market
    what = f"{symbol} {timeframe}"
    if market_name == "store":
        if markets.stored_series(session, exchange_id, symbol, timeframe) is None:
            raise InvalidInputError(
                f"no {what} candles are stored for {exchange_id}, and scheduled watches read the candle store "
                "(STEADYHAND_MARKET=store): import them first",
                field="timeframe",
                details={"value": timeframe},
            )
        return ()
    if market_name != "replay":
        return ()
    market = replay_market(session, settings)
    if (symbol, timeframe) not in market.series:
        replayed = ", ".join(f"{s} {t}" for s, t in market.series)
        raise InvalidInputError(
            f"the replay market has no {what} candles (it replays {replayed}), and scheduled watches read it "
            "(STEADYHAND_MARKET=replay): choose one of those, or set STEADYHAND_MARKET=ccxt:EXCHANGE for live data",
            field="timeframe" if symbol in market.symbols else "symbol",
            details={"value": timeframe if symbol in market.symbols else symbol},
        )
    needed = WARMUP_BARS + 1
    ready = market.closed_count_at(symbol, timeframe, needed)
    now = market.clock.now()
    if ready is None:
        raise InvalidInputError(
            f"the replay holds fewer than {needed} {what} candles, the history a run needs: choose a shorter timeframe",
            field="timeframe",
            details={"value": timeframe},
        )
    if ready <= now:
        return ()
    have = len(market.closed_candles(symbol, timeframe, needed, now))
    wait = market.clock.wall_time_of(ready) - system_clock()
    return (
        f"the replay has {have} closed {what} candles now and a run needs {needed}: this watch's runs fail until "
        f"the replay reaches {ready:%Y-%m-%d %H:%M} UTC (in about {_duration(wait)})",
    )


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{max(1, round(hours * 60))} min"
