"""People and their secrets: users, API keys (hashed), exchange and LLM credentials (encrypted)."""

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import Model
from app.models.types import Amount, UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.trading import Account, Watch

DEFAULT_DAILY_BUDGET_USD = Decimal("1.00")
DEFAULT_MONTHLY_BUDGET_USD = Decimal("10.00")


# flask_login ships no types, so UserMixin is Any to mypy and query results for User come back as Any: services
# annotate them (`user: User | None = session.scalar(...)`).
class User(UserMixin, Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(80))
    is_active: Mapped[bool] = mapped_column(default=True)
    daily_budget_usd: Mapped[Decimal] = mapped_column(Amount, default=DEFAULT_DAILY_BUDGET_USD)
    monthly_budget_usd: Mapped[Decimal] = mapped_column(Amount, default=DEFAULT_MONTHLY_BUDGET_USD)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    accounts: Mapped[list["Account"]] = relationship(back_populates="user", cascade="all, delete-orphan")
    watches: Mapped[list["Watch"]] = relationship(back_populates="user", cascade="all, delete-orphan")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        """Flask-Login's session id: `"<id>:<password fingerprint>"`. A new password changes the fingerprint, so it
        ends every session and remember-me cookie that holds the old one (the user loader compares them)."""
        return f"{self.id}:{self.password_fingerprint()}"

    def password_fingerprint(self) -> str:
        """16 hex digits of the SHA-256 of the salted password hash: says nothing about the password (the salt is
        not in it), changes with every new password."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


class ApiKey(Model):
    """A REST API key. Only its SHA-256 is stored; the prefix lets a user tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(80), default="read")
    # The key's own spending caps in USD (None: only the user's caps apply) and the models it may ask (space
    # separated `provider:model`; None: any). Enforced by the budget ledger with the user's caps.
    daily_budget_usd: Mapped[Decimal | None] = mapped_column(Amount)
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(Amount)
    allowed_models: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_address: Mapped[str | None] = mapped_column(String(45))  # IPv4 or IPv6 text form
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(Model):
    """A POST made with an `Idempotency-Key`: what it asked (method, path, body hash) and, once done, its response.

    The unique (user, key) row is taken before the request runs, so a concurrent repeat is refused instead of
    running twice; `status_code` stays None while the first one is in progress.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path and body
    status_code: Mapped[int | None] = mapped_column()
    response_body: Mapped[str | None] = mapped_column(Text)
    response_location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExchangeCredential(Model):
    """Exchange API keys, Fernet-encrypted; `api_key_hint` is the masked form shown to the user."""

    __tablename__ = "exchange_credentials"
    __table_args__ = (UniqueConstraint("user_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    exchange_id: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(80))
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    api_secret_encrypted: Mapped[str] = mapped_column(Text)
    passphrase_encrypted: Mapped[str | None] = mapped_column(Text)
    api_key_hint: Mapped[str] = mapped_column(String(24))
    sandbox: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LlmCredential(Model):
    """A user's own LLM provider key (overrides the service's environment key), Fernet-encrypted."""

    __tablename__ = "llm_credentials"
    __table_args__ = (UniqueConstraint("user_id", "provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    api_key_encrypted: Mapped[str] = mapped_column(Text)
    api_key_hint: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
