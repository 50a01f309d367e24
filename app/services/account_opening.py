"""Opening accounts: a paper account with a starting balance in USDT, a live account with its exchange keys stored
encrypted, and where a live account's requests go.

Every function here only writes the database: the caller commits (one unit of work per command or request).
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, AccountKind
from app.services import audit, markets
from app.services.accounts import get_account
from app.services.credentials import ExchangeKeys, store_exchange_keys
from exchanges.endpoints import check_base_url

# A paper account trades Binance spot prices in USDT. Binance's minimum notional is 5-10 USDT a trade, so less than
# 10 USDT could never place one; above a million the product's small-account risk defaults make little sense.
PAPER_EXCHANGE = "binance"
PAPER_CURRENCY = "USDT"
MIN_PAPER_BALANCE = Decimal("10")
MAX_PAPER_BALANCE = Decimal("1000000")
MAX_NAME_LENGTH = 80


def paper_balance(value: str | Decimal) -> Decimal:
    """A starting balance in USDT from what the user typed ("100", "1,000.50"); `InvalidInputError` on field
    `starting_balance` naming the value when it is not a number between 10 and 1,000,000 with at most 2 decimals."""
    text = str(value).strip().replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise InvalidInputError(
            f'starting_balance must be a number of USDT, got "{str(value)[:40]}"', field="starting_balance"
        ) from None
    if not amount.is_finite() or not MIN_PAPER_BALANCE <= amount <= MAX_PAPER_BALANCE:
        raise InvalidInputError(
            f"starting_balance must be between {MIN_PAPER_BALANCE:,} and {MAX_PAPER_BALANCE:,} USDT, got {text}",
            field="starting_balance",
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidInputError(f"starting_balance has at most 2 decimals, got {text}", field="starting_balance")
    return amount


def _free_name(session: Session, user_id: int, name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInputError("name must not be empty", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"name is at most {MAX_NAME_LENGTH} characters, got {len(name)}", field="name")
    if session.scalar(select(Account.id).where(Account.user_id == user_id, Account.name == name)) is not None:
        raise InvalidInputError(f'you already have an account named "{name}"', field="name")
    return name


def add_paper_account(session: Session, user_id: int, name: str, starting_balance: str | Decimal) -> Account:
    """A paper account on Binance spot prices holding `starting_balance` USDT; audited. The caller commits.

    Raises `InvalidInputError` on `name` (empty, too long, already the user's) or `starting_balance` (see
    `paper_balance`).
    """
    balance = paper_balance(starting_balance)
    account = Account(
        user_id=user_id,
        name=_free_name(session, user_id, name),
        kind=AccountKind.PAPER,
        exchange_id=PAPER_EXCHANGE,
        quote_currency=PAPER_CURRENCY,
        starting_balance=balance,
        current_balance=balance,
        peak_equity=balance,
    )
    session.add(account)
    session.flush()
    audit.for_account(session, account, "account.opened", f"paper account opened with {balance:,} {PAPER_CURRENCY}")
    return account


@dataclass(frozen=True)
class NewLiveAccount:
    name: str
    keys: ExchangeKeys
    base_url: str | None = None  # the exchange API's scheme://host[:port] instead of ccxt's (None: ccxt's own)


def add_live_account(session: Session, settings: Settings, user_id: int, request: NewLiveAccount) -> Account:
    """Store the exchange keys encrypted and create a live account that trades with them. The caller commits.

    Raises `InvalidInputError` for an empty name or key, an exchange without known markets, a name the user
    already has, or an unacceptable base URL (see `checked_base_url`).
    """
    base_url = checked_base_url(request.base_url)
    name = _free_name(session, user_id, request.name)
    markets.catalog(session, settings, request.keys.exchange_id)
    credential = store_exchange_keys(session, settings, user_id, request.keys)
    account = Account(
        user_id=user_id,
        name=name,
        kind=AccountKind.LIVE,
        exchange_id=request.keys.exchange_id,
        exchange_base_url=base_url,
        credential_id=credential.id,
        starting_balance=Decimal(0),
        current_balance=Decimal(0),
        peak_equity=Decimal(0),
    )
    session.add(account)
    session.flush()
    return account


def change_exchange_base_url(session: Session, user_id: int, account_id: int, base_url: str | None) -> Account:
    """Point a live account's exchange requests at `base_url` (None: back to ccxt's own URLs); audited.

    Raises `InvalidInputError` for a paper account (it sends no requests) or an unacceptable URL (see
    `checked_base_url`). The caller commits.
    """
    account = get_account(session, user_id, account_id)
    if account.kind is not AccountKind.LIVE:
        raise InvalidInputError(
            f"account #{account.id} is a paper account: it sends no exchange requests", field="account_id"
        )
    account.exchange_base_url = checked_base_url(base_url)
    audit.for_account(
        session,
        account,
        "account.exchange_base_url",
        f"exchange base URL set to {account.exchange_base_url or f'the default of {account.exchange_id}'}",
    )
    return account


def checked_base_url(base_url: str | None) -> str | None:
    """The base URL as stored (scheme://host[:port]), None for none; `InvalidInputError` on field `exchange_base_url`
    naming the value (its user:password part masked) when it is not https (http only to 127.0.0.1 or localhost),
    carries credentials, or has a path, query or fragment."""
    if base_url is None or not base_url.strip():
        return None
    try:
        return check_base_url(base_url)
    except ValueError as error:
        raise InvalidInputError(
            f'exchange_base_url {error}, got "{_masked(base_url.strip())}"',
            field="exchange_base_url",
            details={"value": _masked(base_url.strip())},
        ) from None


def _masked(url: str) -> str:
    # A user:password@ in the URL may be a real secret: it must not reach an error message or a log.
    scheme, sep, rest = url.rpartition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{path}"
