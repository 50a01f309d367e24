"""The local demo: a user, a 100 USDT paper account, two watches on the offline rules analyst, real candles."""

import hashlib
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings, instance_secret
from app.errors import ForbiddenError
from app.models import Account, AccountKind, User, Watch
from app.persistence import candle_files
from app.persistence.candles import ImportReport, import_candles
from app.services import Clock, system_clock, watches
from app.services.watches import NewWatch
from exchanges.candles import read_candle_csv

DEMO_EMAIL = "demo@steadyhand.local"
DEMO_ACCOUNT = "Demo paper account"
DEMO_BALANCE = Decimal("100")
DEMO_EXCHANGE = "binance"
DEMO_SIGNAL_SOURCE = "rules:ema_rsi_volume"
DEMO_SYMBOLS = ("BTC/USDT", "ETH/USDT")
DEMO_TIMEFRAME = "1h"
# (file in data/candles, symbol, timeframe): the bundled real Binance candles (see data/PROVENANCE.md).
DEMO_CANDLE_FILES = (
    ("binance_BTCUSDT_1h_2017-08_2021-06.csv", "BTC/USDT", "1h"),
    ("binance_BTCUSDT_1h_2024-01_2024-09.csv", "BTC/USDT", "1h"),
    ("binance_BTCUSDT_1d_2017-08_2021-06.csv", "BTC/USDT", "1d"),
    ("binance_BTCUSDT_1d_2024-01_2024-09.csv", "BTC/USDT", "1d"),
    ("binance_ETHUSDT_1h_2017-08_2021-06.csv", "ETH/USDT", "1h"),
    ("binance_ETHUSDT_1h_2024-01_2024-09.csv", "ETH/USDT", "1h"),
    ("binance_ETHUSDT_1d_2017-08_2021-06_resampled.csv", "ETH/USDT", "1d"),
    ("binance_ETHUSDT_1d_2024-01_2024-09.csv", "ETH/USDT", "1d"),
)


@dataclass(frozen=True)
class UnchangedFile:
    """A bundled candle file skipped: imported before with the same bytes, its candles all still stored."""

    file_name: str
    exchange_id: str
    symbol: str
    timeframe: str
    rows: int


@dataclass
class DemoSeedReport:
    email: str
    # None when the demo user's password was changed after seeding: it is not ours to print.
    password: str | None
    created_user: bool
    created_account: bool
    created_watches: int
    imports: list[ImportReport]
    unchanged: list[UnchangedFile] = field(default_factory=list)


def seed_demo(
    session: Session, settings: Settings, reset_password: bool = False, clock: Clock = system_clock
) -> DemoSeedReport:
    """Create whatever part of the demo is missing; running it again changes nothing.

    A bundled candle file already imported with the same content (sha256), its candles still stored, is not read
    again: a second start does not re-read ~82,000 candles. A changed file is imported as the first time.

    The caller commits, so a failure leaves no half-seeded demo behind. Raises `ForbiddenError` in production: the
    demo user's password is printed and kept in a file.
    """
    if settings.is_production:
        raise ForbiddenError("the demo is for local instances: it creates a user with a known password")
    password_file = settings.instance_path / "demo_password"
    if reset_password:
        password_file.unlink(missing_ok=True)
    password = instance_secret(password_file, lambda: secrets.token_urlsafe(12))
    user: User | None = session.scalar(select(User).where(User.email == DEMO_EMAIL))
    created_user = user is None
    if user is None:
        user = User(email=DEMO_EMAIL, display_name="Demo trader")
        user.set_password(password)
        session.add(user)
        session.flush()
    elif reset_password:
        user.set_password(password)

    account = session.scalar(select(Account).where(Account.user_id == user.id, Account.name == DEMO_ACCOUNT))
    created_account = account is None
    if account is None:
        account = Account(
            user=user,
            name=DEMO_ACCOUNT,
            kind=AccountKind.PAPER,
            exchange_id=DEMO_EXCHANGE,
            quote_currency="USDT",
            starting_balance=DEMO_BALANCE,
            current_balance=DEMO_BALANCE,
            peak_equity=DEMO_BALANCE,
        )
        session.add(account)
        session.flush()

    created_watches = 0
    for symbol in DEMO_SYMBOLS:
        exists = session.scalar(
            select(Watch.id).where(
                Watch.user_id == user.id,
                Watch.exchange_id == DEMO_EXCHANGE,
                Watch.symbol == symbol,
                Watch.timeframe == DEMO_TIMEFRAME,
                Watch.signal_source == DEMO_SIGNAL_SOURCE,
            )
        )
        if exists is None:
            request = NewWatch(
                symbol=symbol,
                timeframe=DEMO_TIMEFRAME,
                signals=DEMO_SIGNAL_SOURCE,
                exchange_id=DEMO_EXCHANGE,
                account_id=account.id,
                # The demo paper account trades on its own, so a fresh install shows positions and equity moving.
                auto_execute=True,
            )
            watches.create_watch(session, settings, user.id, request)
            created_watches += 1

    imports: list[ImportReport] = []
    unchanged: list[UnchangedFile] = []
    for name, symbol, timeframe in DEMO_CANDLE_FILES:
        path = _candle_file(settings, name)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        done = candle_files.unchanged_import(session, name, DEMO_EXCHANGE, symbol, timeframe, digest)
        if done is not None:
            unchanged.append(UnchangedFile(name, DEMO_EXCHANGE, symbol, timeframe, done.row_count))
            continue
        report = import_candles(session, DEMO_EXCHANGE, symbol, timeframe, read_candle_csv(path, timeframe))
        candle_files.record_import(session, name, digest, report, clock())
        imports.append(report)
    return DemoSeedReport(
        email=DEMO_EMAIL,
        password=password if user.check_password(password) else None,
        created_user=created_user,
        created_account=created_account,
        created_watches=created_watches,
        imports=imports,
        unchanged=unchanged,
    )


def _candle_file(settings: Settings, name: str) -> Path:
    return settings.data_dir / "candles" / name
