"""Configuration from environment variables (and an optional .env), validated once at start-up."""

import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from limits import parse_many
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from exchanges.vault import VaultKeyError, generate_key, parse_keys

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("local", "production", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("json", "text")
MIN_SECRET_KEY_LENGTH = 32

# Every variable the service reads, with what it means; README's configuration table mirrors this.
VARIABLES = {
    "STEADYHAND_ENV": "local (default), production or test",
    "DATABASE_URL": "SQLAlchemy URL; default sqlite:///instance/steadyhand.db",
    "SECRET_KEY": "Flask session signing key; required in production",
    "STEADYHAND_ENCRYPTION_KEYS": "comma-separated Fernet keys, first one encrypts; required in production",
    "DEEPSEEK_API_KEY": "DeepSeek API key (optional)",
    "DEEPSEEK_BASE_URL": "DeepSeek API base URL",
    "ANTHROPIC_API_KEY": "Anthropic API key (optional)",
    "ANTHROPIC_BASE_URL": "Anthropic API base URL",
    "REDIS_URL": "Redis for rate limits (optional; in-process memory otherwise)",
    "STEADYHAND_INSTANCE_PATH": "folder for the local database and generated keys; default instance/",
    "STEADYHAND_DATA_DIR": "folder of bundled candles and market snapshots; default data/",
    "LOG_LEVEL": "DEBUG, INFO (default), WARNING or ERROR",
    "LOG_FORMAT": "json (default in production) or text (default otherwise)",
    "STEADYHAND_MARKET": "where watches read candles: replay (default, bundled data), store or ccxt:EXCHANGE",
    "STEADYHAND_REPLAY_SPEED": "replay market speed, replay seconds per wall second; default 360 (a 1h bar per 10 s)",
    "STEADYHAND_RUN_POOL_SIZE": "watch runs executed at once by the scheduler without a broker; default 16",
    "STEADYHAND_RUN_TIMEOUT": "seconds after which a watch run still running is marked failed; default 120",
    "STEADYHAND_SETTLE_SECONDS": "seconds to wait after a candle closes before its runs start; default 5",
    "STEADYHAND_SCHEDULER_LEASE": "seconds a scheduler's leadership lasts unless renewed; default 30",
    "STEADYHAND_BROKER_URL": "Celery broker (redis://... or amqp://...): the scheduler only claims and enqueues, "
    "`celery -A app.jobs.celery_app worker` processes run watch runs and backtests (optional; without it the "
    "scheduler runs them in its own pool)",
    "STEADYHAND_CORS_ORIGINS": "comma-separated origins (https://app.example.com) whose pages may call /api/v1 "
    "from a browser; default none",
    "STEADYHAND_API_RATE_LIMIT": "requests per API key to /api/v1 (Flask-Limiter syntax); default 120 per minute",
    "STEADYHAND_API_PAID_RATE_LIMIT": "requests per API key to POST /api/v1/analyze and /api/v1/backtests; "
    "default 10 per minute",
}


class ConfigError(Exception):
    """Configuration that the service refuses to start with; the message names the variable."""


@dataclass(frozen=True)
class SchedulerSettings:
    """How watches run: the market they read, and the scheduler's pace, pool and leadership lease."""

    market: str = "replay"
    replay_speed: float = 360.0
    pool_size: int = 16
    run_timeout_seconds: float = 120.0
    settle_seconds: float = 5.0
    lease_seconds: float = 30.0
    broker_url: str | None = None  # Celery broker: runs and backtests go to workers; None: the scheduler's own pool


@dataclass(frozen=True)
class ApiSettings:
    """The REST API's browser origins and per-key rate limits (Flask-Limiter strings, e.g. "120 per minute")."""

    cors_origins: tuple[str, ...] = ()
    rate_limit: str = "120 per minute"
    paid_rate_limit: str = "10 per minute"  # analyze and backtests: each may start paid AI calls


@dataclass(frozen=True)
class Settings:
    env: str
    instance_path: Path
    data_dir: Path
    database_url: str
    secret_key: str
    encryption_keys: tuple[str, ...]
    deepseek_api_key: str | None
    deepseek_base_url: str
    anthropic_api_key: str | None
    anthropic_base_url: str
    redis_url: str | None
    log_level: str
    log_format: str
    scheduler: SchedulerSettings = SchedulerSettings()
    api: ApiSettings = ApiSettings()

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def secret_values(self) -> list[str]:
        """Values that must never appear in a log line."""
        values = [
            self.secret_key,
            *self.encryption_keys,
            self.deepseek_api_key,
            self.anthropic_api_key,
            make_url(self.database_url).password,
            make_url(self.redis_url).password if self.redis_url else None,
            urlsplit(self.scheduler.broker_url).password if self.scheduler.broker_url else None,
        ]
        return [str(value) for value in values if value]


def environment_with_dotenv(dotenv_path: Path = PROJECT_ROOT / ".env") -> dict[str, str]:
    """os.environ over the optional .env file: a variable set in the environment wins."""
    from_file = {key: value for key, value in dotenv_values(dotenv_path).items() if value is not None}
    return {**from_file, **os.environ}


def load_settings(environ: Mapping[str, str]) -> Settings:
    env = _choice(environ, "STEADYHAND_ENV", ENVIRONMENTS, "local")
    instance_path = Path(environ.get("STEADYHAND_INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()
    data_dir = Path(environ.get("STEADYHAND_DATA_DIR") or PROJECT_ROOT / "data").resolve()
    if not data_dir.is_dir():
        raise ConfigError(f"STEADYHAND_DATA_DIR: {data_dir} is not a folder")
    production = env == "production"

    secret_key = _secret_key(environ, instance_path, production)
    encryption_keys = _encryption_keys(environ, instance_path, production)
    return Settings(
        env=env,
        instance_path=instance_path,
        data_dir=data_dir,
        database_url=_database_url(environ, instance_path),
        secret_key=secret_key,
        encryption_keys=tuple(encryption_keys),
        deepseek_api_key=environ.get("DEEPSEEK_API_KEY") or None,
        deepseek_base_url=_http_url(environ, "DEEPSEEK_BASE_URL", "https://api.deepseek.com"),
        anthropic_api_key=environ.get("ANTHROPIC_API_KEY") or None,
        anthropic_base_url=_http_url(environ, "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
        redis_url=_redis_url(environ),
        log_level=_choice(environ, "LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
        log_format=_choice(environ, "LOG_FORMAT", LOG_FORMATS, "json" if production else "text"),
        scheduler=_scheduler(environ),
        api=_api(environ),
    )


def _api(environ: Mapping[str, str]) -> ApiSettings:
    origins = tuple(
        origin.strip().rstrip("/")
        for origin in (environ.get("STEADYHAND_CORS_ORIGINS") or "").split(",")
        if origin.strip()
    )
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ConfigError(
                f"STEADYHAND_CORS_ORIGINS: {origin!r} is not an origin (scheme and host, e.g. https://app.example.com)"
            )
    return ApiSettings(
        cors_origins=origins,
        rate_limit=_rate_limit(environ, "STEADYHAND_API_RATE_LIMIT", ApiSettings.rate_limit),
        paid_rate_limit=_rate_limit(environ, "STEADYHAND_API_PAID_RATE_LIMIT", ApiSettings.paid_rate_limit),
    )


def _rate_limit(environ: Mapping[str, str], name: str, default: str) -> str:
    value = (environ.get(name) or default).strip()
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            f"{name}={value!r} is not a rate limit (e.g. 120 per minute, or 10/minute;1000/day)"
        ) from None
    return value


def _scheduler(environ: Mapping[str, str]) -> SchedulerSettings:
    market = (environ.get("STEADYHAND_MARKET") or "replay").strip().lower()
    if market not in ("replay", "store") and not (market.startswith("ccxt:") and len(market) > len("ccxt:")):
        raise ConfigError(
            f"STEADYHAND_MARKET={market!r} is not one of: replay, store, ccxt:EXCHANGE (e.g. ccxt:binance)"
        )
    return SchedulerSettings(
        market=market,
        replay_speed=_number(environ, "STEADYHAND_REPLAY_SPEED", 360.0, 1.0, 1_000_000.0),
        pool_size=int(_number(environ, "STEADYHAND_RUN_POOL_SIZE", 16, 1, 64, whole=True)),
        run_timeout_seconds=_number(environ, "STEADYHAND_RUN_TIMEOUT", 120.0, 5.0, 3600.0),
        settle_seconds=_number(environ, "STEADYHAND_SETTLE_SECONDS", 5.0, 0.0, 600.0),
        lease_seconds=_number(environ, "STEADYHAND_SCHEDULER_LEASE", 30.0, 3.0, 600.0),
        broker_url=_broker_url(environ),
    )


BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")


def _broker_url(environ: Mapping[str, str]) -> str | None:
    value = (environ.get("STEADYHAND_BROKER_URL") or "").strip()
    if not value:
        return None
    if not value.startswith(BROKER_SCHEMES) or len(value) <= value.index("://") + 3:
        raise ConfigError(
            "STEADYHAND_BROKER_URL must be a redis://, rediss://, amqp:// or amqps:// URL with a host "
            "(e.g. redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//)"
        )
    return value


def _number(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float, whole: bool = False
) -> float:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name}={raw!r} is not {kind} (from {low:g} to {high:g})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be from {low:g} to {high:g}")
    return float(value)


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str, upper: bool = False) -> str:
    value = (environ.get(name) or default).strip()
    value = value.upper() if upper else value.lower()
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of: {', '.join(allowed)}")
    return value


def _database_url(environ: Mapping[str, str], instance_path: Path) -> str:
    raw = environ.get("DATABASE_URL")
    if not raw:
        instance_path.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{instance_path / 'steadyhand.db'}"
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL is not a valid database URL (expected e.g. postgresql://user@host:5432/db "
            "or sqlite:///path/to/file.db)"
        ) from None
    backend = url.get_backend_name()
    if backend == "postgres":
        url = url.set(drivername="postgresql")
        backend = "postgresql"
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"DATABASE_URL uses {backend!r}; Steadyhand supports sqlite and postgresql")
    if backend == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2; Steadyhand ships psycopg 3.
        url = url.set(drivername="postgresql+psycopg")
    return _render(url)


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _http_url(environ: Mapping[str, str], name: str, default: str) -> str:
    value = (environ.get(name) or default).strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL")
    return value


def _redis_url(environ: Mapping[str, str]) -> str | None:
    value = (environ.get("REDIS_URL") or "").strip()
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    return value or None


def _secret_key(environ: Mapping[str, str], instance_path: Path, production: bool) -> str:
    value = environ.get("SECRET_KEY")
    if value:
        if len(value) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(f"SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} random characters")
        return value
    if production:
        raise ConfigError(
            "SECRET_KEY must be set explicitly when STEADYHAND_ENV=production "
            '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))")'
        )
    return instance_secret(instance_path / "secret_key", lambda: secrets.token_urlsafe(48))


def _encryption_keys(environ: Mapping[str, str], instance_path: Path, production: bool) -> list[str]:
    value = environ.get("STEADYHAND_ENCRYPTION_KEYS")
    if not value and production:
        raise ConfigError(
            "STEADYHAND_ENCRYPTION_KEYS must be set explicitly when STEADYHAND_ENV=production "
            '(generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        )
    source = "STEADYHAND_ENCRYPTION_KEYS"
    if not value:
        key_file = instance_path / "encryption.key"
        value, source = instance_secret(key_file, generate_key), str(key_file)
    try:
        return parse_keys(value, source)
    except VaultKeyError as exc:
        raise ConfigError(str(exc)) from None


def instance_secret(path: Path, generate: Callable[[], str]) -> str:
    """Read a generated secret of the local instance, creating it (mode 0600) on first use.

    The value is written to a private temporary file and hard-linked into place, so concurrent first
    starts (several workers) agree on one value and nobody reads a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(generate() + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ConfigError(f"{path} is empty: delete it to generate a new one")
    return value
