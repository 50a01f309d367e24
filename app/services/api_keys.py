"""REST API keys: issued once, stored as a SHA-256 only, scoped, expiring, revocable.

A key reads `sh_` + 30 random base62 characters + 6 base62 characters of the CRC32 of the random part, the layout
GitHub uses for its tokens (https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/): the
prefix lets secret scanners and our own log scrubbing recognise a key, and the checksum rejects a mistyped or
made-up key before any database lookup. 30 base62 characters hold about 178 bits of randomness.
"""

import hashlib
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ai.models import default_model, load_models, model_info
from ai.sources import LLM_PROVIDERS, SourceSpec
from app.errors import BudgetRefusedError, ForbiddenError, InvalidInputError, ServiceError, shown
from app.models import ApiKey
from app.persistence.budget_ledger import key_committed_usd, period_starts
from app.services import audit
from app.services.lookup import owned

TOKEN_PREFIX = "sh_"  # noqa: S105 (a public marker, not a secret)
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LENGTH, _CHECKSUM_LENGTH = 30, 6
TOKEN_LENGTH = len(TOKEN_PREFIX) + _RANDOM_LENGTH + _CHECKSUM_LENGTH
SHOWN_PREFIX_LENGTH = len(TOKEN_PREFIX) + 6  # what lists show, e.g. "sh_4kT9qZ", to tell keys apart
SCOPES = ("read", "analyze", "trade", "admin")
LAST_USE_RESOLUTION = timedelta(minutes=1)
MAX_NAME = 80
MAX_ADDRESS = 45  # the column: IPv6 text form at its longest
MAX_ALLOWED_MODELS = 500  # the column: space-separated provider:model
MAX_CAP_USD = Decimal(1_000_000)  # a key's daily or monthly cap: far above any real use, well inside the column


class UnauthorizedError(ServiceError):
    """No valid key: missing, malformed, unknown, expired or revoked. One message for all, so a caller learns nothing
    about which keys exist."""

    code = "UNAUTHORIZED"
    http_status = 401


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str  # shown once: only its SHA-256 is stored


def issue_key(
    session: Session,
    user_id: int,
    name: str,
    scopes: Iterable[str],
    now: datetime,
    expires_in_days: int | None = None,
    *,
    daily_budget_usd: Decimal | None = None,
    monthly_budget_usd: Decimal | None = None,
    allowed_models: Iterable[str] | None = None,
) -> IssuedKey:
    """A new key for the user with `scopes` (some of read, analyze, trade, admin), expiring after `expires_in_days`
    days (None: never), with its own daily and monthly spending caps in USD (None: only the user's caps apply) and
    the `provider:model`s it may ask (None or empty: any). Audited; the caller commits. Raises `InvalidInputError`
    naming the field for an empty or too long name, an unknown or missing scope, an expiry that is not a positive
    number of days, a cap that is not a positive amount up to `MAX_CAP_USD` (`daily_budget`, `monthly_budget`) or an
    unknown provider or model (`model`)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInputError(f"name must be 1 to {MAX_NAME} characters, got {name!r}", field="name")
    wanted = sorted({scope.strip().lower() for scope in scopes}, key=_scope_order)
    if not wanted:
        raise InvalidInputError(f"scope must name at least one of {', '.join(SCOPES)}", field="scope")
    if expires_in_days is not None and expires_in_days < 1:
        raise InvalidInputError(
            f'expires must be a whole number of days of 1 or more, got "{expires_in_days}"', field="expires"
        )
    daily = _cap(daily_budget_usd, "daily_budget")
    monthly = _cap(monthly_budget_usd, "monthly_budget")
    if daily is not None and monthly is not None and daily > monthly:
        raise InvalidInputError(
            f"daily_budget {shown(daily)} is more than the monthly cap {shown(monthly)} USD: "
            "a day could never spend it",
            field="daily_budget",
            details={"value": shown(daily)},
        )
    models = _models(allowed_models or ())
    token = _new_token()
    key = ApiKey(
        user_id=user_id,
        name=name,
        prefix=token[:SHOWN_PREFIX_LENGTH],
        key_hash=token_hash(token),
        scopes=" ".join(wanted),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days is not None else None,
        daily_budget_usd=daily,
        monthly_budget_usd=monthly,
        allowed_models=" ".join(models) if models else None,
    )
    session.add(key)
    session.flush()
    details: dict[str, object] = {"api_key_id": key.id, "scopes": wanted}
    if daily is not None:
        details["daily_budget_usd"] = shown(daily)
    if monthly is not None:
        details["monthly_budget_usd"] = shown(monthly)
    if models:
        details["allowed_models"] = models
    audit.record(
        session,
        "api_key.created",
        f"API key #{key.id} ({key.name}, {key.prefix}...) created with scopes {key.scopes}",
        user_id=user_id,
        details=details,
    )
    return IssuedKey(key, token)


def authenticate(session: Session, token: str | None, now: datetime, address: str | None = None) -> ApiKey:
    """The live key `token` names, its last use stamped `now` and, when given, the client `address` it came from
    (the caller commits). The stamp is written at most once per `LAST_USE_RESOLUTION` from one address: a script
    polling many times a second must not turn every read into a database write. Raises `UnauthorizedError` for a
    missing, malformed (wrong prefix, length or checksum: no database lookup), unknown, expired or revoked key."""
    if not token or not looks_like_key(token):
        raise UnauthorizedError("a valid API key is required: Authorization: Bearer sh_...")
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == token_hash(token)))
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise UnauthorizedError("a valid API key is required: Authorization: Bearer sh_...")
    address = address[:MAX_ADDRESS] if address is not None else key.last_used_address
    stale = key.last_used_at is None or now - key.last_used_at >= LAST_USE_RESOLUTION
    if stale or address != key.last_used_address:
        key.last_used_at, key.last_used_address = now, address
    return key


def spent_by_key(session: Session, key_id: int, now: datetime) -> tuple[Decimal, Decimal]:
    """USD spent (settled) or held reserved through the key since the start of `now`'s UTC day and UTC month: what
    counts toward its daily and monthly caps."""
    day, month = period_starts(now)
    return key_committed_usd(session, key_id, day), key_committed_usd(session, key_id, month)


def allowed_models(key: ApiKey) -> list[str] | None:
    """The `provider:model`s the key may ask; None: any."""
    return key.allowed_models.split() if key.allowed_models else None


def has_scope(key: ApiKey, scope: str) -> bool:
    """Whether `key` carries `scope`; `admin` carries every scope."""
    held = key.scopes.split()
    return scope in held or "admin" in held


def list_keys(session: Session, user_id: int) -> list[ApiKey]:
    """The user's keys, newest first, revoked and expired ones included."""
    return list(session.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id.desc())))


def revoke_key(session: Session, user_id: int, key_id: int, now: datetime) -> ApiKey:
    """Revoke one of the user's keys: its next request is refused. Revoking a revoked key changes nothing. Audited;
    the caller commits. Raises `NotFoundError` for a key that is not the user's."""
    key = owned(session, ApiKey, key_id, user_id)
    if key.revoked_at is None:
        key.revoked_at = now
        audit.record(
            session,
            "api_key.revoked",
            f"API key #{key.id} ({key.name}, {key.prefix}...) revoked",
            user_id=user_id,
            details={"api_key_id": key.id},
        )
    return key


def looks_like_key(text: str) -> bool:
    """Whether `text` has a key's prefix, length, alphabet and a matching checksum (so logs can be scrubbed of keys
    and a made-up key is refused without a database lookup)."""
    if len(text) != TOKEN_LENGTH or not text.startswith(TOKEN_PREFIX):
        return False
    body = text[len(TOKEN_PREFIX) :]
    if any(char not in _ALPHABET for char in body):
        return False
    random_part, checksum = body[:_RANDOM_LENGTH], body[_RANDOM_LENGTH:]
    return secrets.compare_digest(checksum, _checksum(random_part))


def token_hash(token: str) -> str:
    """The stored form of a key: hex SHA-256 (a key is 178 random bits, so a fast hash is enough; no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return f"{TOKEN_PREFIX}{random_part}{_checksum(random_part)}"


def _checksum(random_part: str) -> str:
    value = zlib.crc32(random_part.encode())
    digits = []
    for _ in range(_CHECKSUM_LENGTH):
        value, digit = divmod(value, len(_ALPHABET))
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _cap(amount: Decimal | None, field: str) -> Decimal | None:
    """A key's cap in USD: None (no cap of its own) or a positive amount of at most `MAX_CAP_USD`."""
    if amount is None:
        return None
    typed = str(amount)[:40]  # as given (1E+300), not its 300 digits
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidInputError(
            f'{field} must be a positive amount in USD, got "{typed}"', field=field, details={"value": typed}
        )
    if amount > MAX_CAP_USD:
        raise InvalidInputError(
            f'{field} must be at most {MAX_CAP_USD:,} USD, got "{typed}"', field=field, details={"value": typed}
        )
    return amount


def _models(models: Iterable[str]) -> list[str]:
    """`provider:model`s, each a model the project knows (ai/data/models.yaml), in the order given, without repeats."""
    known: list[str] = []
    for text in models:
        provider, _, model = text.strip().partition(":")
        provider, model = provider.strip().lower(), model.strip()
        if provider not in LLM_PROVIDERS or not model:
            raise InvalidInputError(
                f'model must be provider:model with a provider of {", ".join(LLM_PROVIDERS)}, got "{text}"',
                field="model",
                details={"value": text},
            )
        try:
            model_info(provider, model)
        except ValueError as error:
            raise InvalidInputError(f'model "{text}": {error}', field="model", details={"value": text}) from None
        name = f"{provider}:{model}"
        if name not in known:
            known.append(name)
    if len(" ".join(known)) > MAX_ALLOWED_MODELS:
        raise InvalidInputError(f"too many models: at most {MAX_ALLOWED_MODELS} characters together", field="model")
    return known


def _scope_order(scope: str) -> int:
    if scope not in SCOPES:
        raise InvalidInputError(f'scope must be one of {", ".join(SCOPES)}, got "{scope}"', field="scope")
    return SCOPES.index(scope)


def usable_key(session: Session, user_id: int, api_key_id: int | None, chain: Iterable[SourceSpec]) -> ApiKey | None:
    """The user's key a request or watch spends under (None: not through a key), after checking that it may ask
    every model of the signal chain. Raises `InvalidInputError` (field `api_key`) for a key that is missing or not the
    user's and `ForbiddenError` (code `MODEL_NOT_ALLOWED`, field `model`) for a model outside its allowed models."""
    if api_key_id is None:
        return None
    key = session.get(ApiKey, api_key_id)
    if key is None or key.user_id != user_id:
        raise InvalidInputError(f"no API key #{api_key_id} of this user", field="api_key")
    allowed = allowed_models(key)
    if allowed is None:
        return key
    for spec in chain:
        if spec.kind == "rules":
            continue  # rules are free: every key may run them
        provider = spec.provider or spec.kind
        model = f"{provider}:{spec.model or default_model(provider)}"
        if model not in allowed:
            raise ForbiddenError(
                f"model {model} is not allowed for API key #{key.id} (allowed: {', '.join(allowed)})",
                code="MODEL_NOT_ALLOWED",
                field="model",
                details={"value": model, "allowed": allowed},
            )
    return key


def check_allowance(session: Session, key: ApiKey, amount_usd: Decimal, now: datetime) -> None:
    """Refuse work that may spend `amount_usd` (USD) when it does not fit in what is left of the key's own daily or
    monthly cap. For work whose calls the ledger does not charge to the key as they happen (a backtest's worker).
    Raises `BudgetRefusedError` (field `max_cost_usd`) with the cap, what the key has spent and the amount."""
    daily, monthly = spent_by_key(session, key.id, now)
    for name, cap, spent in (("daily", key.daily_budget_usd, daily), ("monthly", key.monthly_budget_usd, monthly)):
        if cap is not None and spent + amount_usd > cap:
            raise BudgetRefusedError(
                f"BUDGET_EXCEEDED: API key {name} cap ${cap:.6f}, already spent or reserved ${spent:.6f}, "
                f"this run could cost up to ${amount_usd:.6f}",
                cap=cap,
                spent=spent,
                estimate=amount_usd,
                field="max_cost_usd",
            )


def model_choices() -> list[str]:
    """Every `provider:model` a key may be limited to (the project's model table), by provider then model."""
    table = load_models()
    return [f"{provider}:{model}" for provider in LLM_PROVIDERS for model in table.known(provider)]
