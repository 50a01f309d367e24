"""The exchange an account trades on: the paper exchange over the account's book, or ccxt with its decrypted keys."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, AccountKind
from app.persistence.account_book import load_book
from app.services.credentials import vault
from app.services.markets import MarketDataUnavailableError, catalog, latest_candle_bars, raw_markets
from app.services.upkeep import BarSource
from exchanges.base import Exchange, ExchangeError
from exchanges.book import AccountBook
from exchanges.candles import Candle
from exchanges.markets import UnknownSymbolError
from exchanges.paper import PaperExchange


def account_exchange(
    session: Session,
    settings: Settings,
    account: Account,
    price_of: Callable[[str], Decimal],
    clock: Callable[[], datetime],
) -> tuple[Exchange, AccountBook]:
    """The exchange to trade on, and the book that records the account's money and positions.

    The paper exchange checks funds and holdings against the book; a live exchange holds its own. Either reports
    its fills as order states, which the caller records with `AccountBook.record_fill`: one accounting path.
    """
    book = load_book(session, account)
    if account.kind is AccountKind.PAPER:
        # A paper account simulates one real market's rules: that exchange's markets must be stored or bundled.
        return PaperExchange(book, catalog(session, settings, account.exchange_id), price_of, clock), book
    # ccxt takes about a second to import: only live accounts pay for it.
    from exchanges.ccxt_exchange import CcxtExchange

    credential = account.credential
    assert credential is not None  # the database refuses a live account without one (live_needs_credential)
    secrets = vault(settings)
    exchange = CcxtExchange(
        account.exchange_id,
        api_key=secrets.decrypt(credential.api_key_encrypted),
        secret=secrets.decrypt(credential.api_secret_encrypted),
        password=secrets.decrypt(credential.passphrase_encrypted) if credential.passphrase_encrypted else None,
        sandbox=credential.sandbox,
        # The stored (else bundled) markets spare a markets request; without either ccxt loads them once, live.
        markets=raw_markets(session, settings, account.exchange_id),
        # Checked when it was stored (account_opening.checked_base_url).
        base_url=account.exchange_base_url,
    )
    return exchange, book


def account_candles(
    session: Session, settings: Settings, account: Account, symbol: str, timeframe: str, limit: int, now: datetime
) -> list[Candle]:
    """The last `limit` candles of `symbol` closed by `now`, read through a live account's own connection (its
    sandbox and base URL): the market its orders trade against, not the exchange's public default.

    Raises `MarketDataUnavailableError` when the exchange cannot be reached or refuses, `InvalidInputError` (field
    `symbol`) for a symbol it does not list.
    """
    exchange, _ = account_exchange(session, settings, account, _no_price, lambda: now)
    try:
        return exchange.fetch_candles(symbol, timeframe, limit, now)
    except UnknownSymbolError as error:
        raise InvalidInputError(str(error), field="symbol", details={"value": symbol}) from None
    except ExchangeError as error:
        raise MarketDataUnavailableError(f"{account.exchange_id} market data unavailable: {error}") from None


def account_bars(
    session: Session, settings: Settings, account: Account, timeframe: str, now: datetime, max_bars: int = 1000
) -> BarSource:
    """`account_candles` as upkeep's bar source (like `markets.exchange_bars`): `(symbol, after, until)` -> the closed
    candles whose close is in (after, until], at most the last `max_bars`."""
    return latest_candle_bars(
        lambda symbol, limit: account_candles(session, settings, account, symbol, timeframe, limit, now),
        timeframe,
        max_bars,
    )


def _no_price(symbol: str) -> Decimal:
    raise ExchangeError(f"no price for {symbol} while reading candles")


def account_market(account: Account, default_market: str) -> str:
    """Where an account's candles and prices come from: a live account's own exchange through ccxt (its orders go
    there too), else the configured default ("replay", "store" or "ccxt:EXCHANGE")."""
    if account.kind is AccountKind.LIVE:
        return f"ccxt:{account.exchange_id}"
    return default_market
