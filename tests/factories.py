"""Test data, one builder per model: sensible defaults, a sequence for unique fields, any column overridable.

Each builder adds its row to `session` and flushes (so ids exist); like a service, it leaves the commit to the
caller. Pass `password=None` to `user` to skip the (deliberately slow) password hashing where nobody signs in.
"""

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy.orm import Session

from app import current_settings
from app.models import Account, AccountKind, Analysis, AnalysisStatus, ExchangeCredential, User, Watch
from app.persistence.candles import ImportReport, import_candles
from exchanges.candles import Candle, read_candle_csv
from exchanges.vault import CredentialVault, mask_secret
from tests.conftest import PROJECT_ROOT

CANDLES = PROJECT_ROOT / "data" / "candles"
BTC_2024_1H = "binance_BTCUSDT_1h_2024-01_2024-09.csv"
PASSWORD = "password password"
LIVE_API_KEY, LIVE_API_SECRET = "live-api-key-0123456789", "live-secret-9876543210"
# A hash no password matches: for users nobody signs in as.
UNUSABLE_PASSWORD_HASH = "!"
BAR_TIME = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
HOLD_SIGNAL = {
    "action": "HOLD",
    "confidence": 40,
    "entry_price": None,
    "stop_loss": None,
    "take_profit": None,
    "horizon_bars": 6,
    "reasoning": "No edge.",
    "key_factors": ["flat"],
}

_sequence = itertools.count(1)


def sequence() -> int:
    """The next number of the one sequence every builder draws its unique values from."""
    return next(_sequence)


def _save[T](session: Session, row: T) -> T:
    session.add(row)
    session.flush()
    return row


def user(session: Session, email: str | None = None, password: str | None = PASSWORD, **fields: Any) -> User:
    """A user (`user<n>@example.com` unless `email` is given) who signs in with `password`."""
    email = email or f"user{sequence()}@example.com"
    fields.setdefault("display_name", email.split("@")[0])
    row = User(email=email, **fields)
    if password is None:
        row.password_hash = fields.get("password_hash", UNUSABLE_PASSWORD_HASH)
    else:
        row.set_password(password)
    return _save(session, row)


def paper_account(session: Session, user: User, balance: str | Decimal = "100", **fields: Any) -> Account:
    """A paper account on binance holding `balance` USDT (its start, current balance and peak equity)."""
    return _account(session, user, balance, **{"kind": AccountKind.PAPER, **fields})


def exchange_credential(
    session: Session,
    user: User,
    *,
    api_key: str = LIVE_API_KEY,
    api_secret: str = LIVE_API_SECRET,
    vault: CredentialVault | None = None,
    **fields: Any,
) -> ExchangeCredential:
    """Exchange keys encrypted with `vault` (default: the app's configured keys), with their masked hint."""
    vault = vault or CredentialVault(current_settings().encryption_keys)
    values: dict[str, Any] = {"exchange_id": "binance", "label": f"key {sequence()}", **fields}
    return _save(
        session,
        ExchangeCredential(
            user_id=user.id,
            api_key_encrypted=vault.encrypt(api_key),
            api_secret_encrypted=vault.encrypt(api_secret),
            api_key_hint=mask_secret(api_key),
            **values,
        ),
    )


def live_account(
    session: Session,
    user: User,
    balance: str | Decimal = "100",
    *,
    credential: ExchangeCredential | None = None,
    api_key: str = LIVE_API_KEY,
    api_secret: str = LIVE_API_SECRET,
    label: str | None = None,
    **fields: Any,
) -> Account:
    """A live account trading with `credential`, or with a new encrypted one (labelled `label`) holding `api_key`
    and `api_secret`."""
    if credential is None:
        keys = {"exchange_id": fields.get("exchange_id", "binance"), **({"label": label} if label else {})}
        credential = exchange_credential(session, user, api_key=api_key, api_secret=api_secret, **keys)
    fields.setdefault("name", f"Live {sequence()}")
    return _account(session, user, balance, kind=AccountKind.LIVE, credential_id=credential.id, **fields)


def _account(session: Session, user: User, balance: str | Decimal, **fields: Any) -> Account:
    amount = Decimal(balance)
    values: dict[str, Any] = {
        "name": f"Paper {sequence()}",
        "exchange_id": "binance",
        "starting_balance": amount,
        "current_balance": amount,
        "peak_equity": amount,
        **fields,
    }
    return _save(session, Account(user_id=user.id, **values))


def watch(session: Session, user: User, account: Account | None = None, **fields: Any) -> Watch:
    """A watch of BTC/USDT 1h every hour with `rules:sma_cross`; vary the symbol, timeframe or source for a second
    one (they are unique per user)."""
    values: dict[str, Any] = {
        "exchange_id": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "cadence_minutes": 60,
        "signal_source": "rules:sma_cross",
        **fields,
    }
    return _save(session, Watch(user_id=user.id, account_id=account.id if account else None, **values))


def analysis(session: Session, user: User, account: Account | None = None, **fields: Any) -> Analysis:
    """A recorded rules analysis of BTC/USDT 1h that answered HOLD."""
    values: dict[str, Any] = {
        "exchange_id": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "bar_time": BAR_TIME,
        "signal_source": "rules:sma_cross",
        "provider": "rules",
        "model": "sma_cross",
        "status": AnalysisStatus.OK,
        "signal": dict(HOLD_SIGNAL),
        **fields,
    }
    return _save(session, Analysis(user_id=user.id, account_id=account.id if account else None, **values))


def candles(
    session: Session,
    file: str = BTC_2024_1H,
    symbol: str | None = None,
    timeframe: str | None = None,
    exchange_id: str | None = None,
) -> ImportReport:
    """Import a bundled candle file from data/candles into the store; exchange, symbol and timeframe default to
    what its name says (`binance_BTCUSDT_1h_...csv` -> binance, BTC/USDT, 1h)."""
    named_exchange, pair, named_timeframe = file.split("_")[:3]
    timeframe = timeframe or named_timeframe
    symbol = symbol or (f"{pair.removesuffix('USDT')}/USDT" if pair.endswith("USDT") else pair)
    return import_candles(session, exchange_id or named_exchange, symbol, timeframe, _read(file, timeframe))


@cache
def _read(file: str, timeframe: str) -> Sequence[Candle]:
    """Each bundled file is parsed once per test process (the rows are immutable)."""
    return tuple(read_candle_csv(CANDLES / file, timeframe))
