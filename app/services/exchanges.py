"""The exchange an account trades on: the paper exchange over the account's book, or ccxt with its decrypted keys."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from app.config import Settings
from app.models import Account, AccountKind
from app.persistence.account_book import load_book
from app.services.credentials import vault
from app.services.markets import catalog, raw_markets
from exchanges.base import Exchange
from exchanges.book import AccountBook
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
        # Checked when it was stored (accounts.checked_base_url).
        base_url=account.exchange_base_url,
    )
    return exchange, book
