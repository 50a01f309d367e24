"""The exchange an account trades on: the paper exchange over its own book, or ccxt with its decrypted keys."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from app.account_book import load_book
from app.candle_store import UnknownExchangeError, market_catalog
from app.config import Settings
from app.models import Account, AccountKind
from exchanges.base import Exchange
from exchanges.ccxt_exchange import CcxtExchange
from exchanges.paper import PaperBook, PaperExchange
from exchanges.vault import CredentialVault


def account_exchange(
    session: Session,
    settings: Settings,
    account: Account,
    price_of: Callable[[str], Decimal],
    clock: Callable[[], datetime],
) -> tuple[Exchange, PaperBook]:
    """The exchange to trade on, and the book that records the account's money and positions.

    For a paper account the book *is* the exchange's state; for a live account the book mirrors the exchange's
    fills, so both are accounted the same way.
    """
    book = load_book(session, account)
    if account.kind is AccountKind.PAPER:
        # A paper account simulates one real market's rules, so that market's snapshot must be bundled.
        return PaperExchange(book, market_catalog(settings.data_dir, account.exchange_id), price_of, clock), book
    credential = account.credential
    vault = CredentialVault(settings.encryption_keys)
    exchange = CcxtExchange(
        account.exchange_id,
        api_key=vault.decrypt(credential.api_key_encrypted),
        secret=vault.decrypt(credential.api_secret_encrypted),
        password=vault.decrypt(credential.passphrase_encrypted) if credential.passphrase_encrypted else None,
        sandbox=credential.sandbox,
        markets=_bundled_markets(settings, account.exchange_id),
    )
    return exchange, book


def _bundled_markets(settings: Settings, exchange_id: str) -> dict | None:
    """The bundled snapshot spares a markets request; other exchanges load their markets once, live."""
    try:
        return market_catalog(settings.data_dir, exchange_id).raw_markets
    except UnknownExchangeError:
        return None
