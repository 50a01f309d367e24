"""Secrets a user stores with us: LLM provider keys and exchange keys, encrypted at rest, never shown unmasked.

Also wires the AI layer for one user: providers with the right keys, the database ledger and response cache.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ai.providers.base import SignalProvider
from ai.resilience import CircuitBreaker
from ai.signals import SignalServices
from ai.sources import LLM_PROVIDERS
from app.config import Settings
from app.errors import InvalidInputError, NotFoundError, ServiceError
from app.models import ExchangeCredential, LlmCredential, NotificationChannel
from app.persistence import engine_of
from app.persistence.budget_ledger import SqlBudgetLedger
from app.persistence.response_cache import SqlResponseCache
from exchanges.vault import CredentialVault, VaultDecryptionError, mask_secret

# One breaker per provider and process: a provider failing for one analysis is failing for the next one too.
_BREAKERS: dict[str, CircuitBreaker] = {}

# Every encrypted column: `rotate_keys` re-encrypts all of them, so an old key can be dropped after a rotation.
ENCRYPTED_FIELDS: dict[type[ExchangeCredential | LlmCredential | NotificationChannel], tuple[str, ...]] = {
    ExchangeCredential: ("api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted"),
    LlmCredential: ("api_key_encrypted",),
    # Notification URLs carry bot tokens and webhook secrets sign payloads: secrets like the keys above.
    NotificationChannel: ("target_encrypted", "secret_encrypted"),
}


def vault(settings: Settings) -> CredentialVault:
    return CredentialVault(settings.encryption_keys)


def provider_keys(session: Session, settings: Settings, user_id: int) -> dict[str, str]:
    """The API key per LLM provider for this user: the user's own stored key wins over the service's key."""
    keys = {"deepseek": settings.deepseek_api_key, "claude": settings.anthropic_api_key}
    secrets = vault(settings)
    for credential in session.scalars(select(LlmCredential).where(LlmCredential.user_id == user_id)):
        keys[credential.provider] = secrets.decrypt(credential.api_key_encrypted)
    return {provider: key for provider, key in keys.items() if key}


def signal_services(session: Session, settings: Settings, user_id: int) -> SignalServices:
    """The AI layer's ports for `user_id`: configured providers, the database ledger and the response cache."""
    keys = provider_keys(session, settings, user_id)
    providers: dict[str, SignalProvider] = {}
    # The provider SDKs take a second or more to import: only analyses that can call them pay for it.
    if "deepseek" in keys:
        from ai.providers.deepseek import DeepSeekProvider

        providers["deepseek"] = DeepSeekProvider(keys["deepseek"], settings.deepseek_base_url)
    if "claude" in keys:
        from ai.providers.claude import ClaudeProvider

        providers["claude"] = ClaudeProvider(keys["claude"], settings.anthropic_base_url)
    engine = engine_of(session)
    return SignalServices(
        providers=providers,
        cache=SqlResponseCache(engine),
        ledger=SqlBudgetLedger(engine),
        breakers=_BREAKERS,
    )


@dataclass(frozen=True)
class ExchangeKeys:
    exchange_id: str
    label: str
    api_key: str
    api_secret: str
    passphrase: str = ""
    sandbox: bool = False


def store_exchange_keys(session: Session, settings: Settings, user_id: int, keys: ExchangeKeys) -> ExchangeCredential:
    """Encrypt and store exchange keys; only a masked hint stays readable. The caller commits.

    Raises `InvalidInputError` for an empty key or secret.
    """
    api_key, api_secret = keys.api_key.strip(), keys.api_secret.strip()
    if not api_key:
        raise InvalidInputError("api_key must not be empty", field="api_key")
    if not api_secret:
        raise InvalidInputError("api_secret must not be empty", field="api_secret")
    secrets = vault(settings)
    credential = ExchangeCredential(
        user_id=user_id,
        exchange_id=keys.exchange_id,
        label=keys.label,
        api_key_encrypted=secrets.encrypt(api_key),
        api_secret_encrypted=secrets.encrypt(api_secret),
        passphrase_encrypted=secrets.encrypt(keys.passphrase) if keys.passphrase else None,
        api_key_hint=mask_secret(api_key),
        sandbox=keys.sandbox,
    )
    session.add(credential)
    session.flush()
    return credential


class KeyRotationError(ServiceError):
    code = "KEY_ROTATION_FAILED"
    http_status = 409


def rotate_keys(session: Session, settings: Settings) -> int:
    """Re-encrypt every stored secret under the primary (first) encryption key; returns how many.

    All or nothing: raises `KeyRotationError` (and changes nothing) when a secret cannot be decrypted with any
    configured key. The caller commits.
    """
    secrets = vault(settings)
    rotated = 0
    try:
        for model, fields in ENCRYPTED_FIELDS.items():
            for record in session.scalars(select(model)):
                for name in fields:
                    token = getattr(record, name)
                    if token:
                        setattr(record, name, secrets.rotate(token))
                        rotated += 1
    except VaultDecryptionError as error:
        session.rollback()
        raise KeyRotationError(f"nothing was changed: {error}") from None
    return rotated


def store_llm_key(session: Session, settings: Settings, user_id: int, provider: str, api_key: str) -> LlmCredential:
    """Store (or replace) the user's own key for an LLM provider, encrypted; it wins over the service's key.

    Raises `InvalidInputError` for an unknown provider or an empty key. The caller commits.
    """
    provider = provider.strip().lower()
    if provider not in LLM_PROVIDERS:
        raise InvalidInputError(
            f'provider must be one of {", ".join(LLM_PROVIDERS)}, got "{provider}"', field="provider"
        )
    api_key = api_key.strip()
    if not api_key:
        raise InvalidInputError("api_key must not be empty", field="api_key")
    secrets = vault(settings)
    credential = session.scalar(
        select(LlmCredential).where(LlmCredential.user_id == user_id, LlmCredential.provider == provider)
    )
    if credential is None:
        credential = LlmCredential(user_id=user_id, provider=provider)
        session.add(credential)
    credential.api_key_encrypted = secrets.encrypt(api_key)
    credential.api_key_hint = mask_secret(api_key)
    session.flush()
    return credential


@dataclass(frozen=True)
class LlmKeyView:
    """A stored LLM provider key as a user may see it: the masked hint only."""

    provider: str  # one of `LLM_PROVIDERS`
    hint: str  # e.g. "sk-******wxyz"
    updated_at: datetime


def llm_keys(session: Session, user_id: int) -> list[LlmKeyView]:
    """The user's own LLM provider keys, masked, in `LLM_PROVIDERS` order."""
    rows = session.scalars(select(LlmCredential).where(LlmCredential.user_id == user_id))
    views = [LlmKeyView(row.provider, row.api_key_hint, row.updated_at) for row in rows]
    return sorted(views, key=lambda item: LLM_PROVIDERS.index(item.provider) if item.provider in LLM_PROVIDERS else 99)


def delete_llm_key(session: Session, user_id: int, provider: str) -> LlmKeyView:
    """Forget the user's own key for `provider` (the service's key, if any, applies again). The caller commits.

    Raises `NotFoundError` (field `provider`) when the user stored no key for it.
    """
    name = provider.strip().lower()
    credential = session.scalar(
        select(LlmCredential).where(LlmCredential.user_id == user_id, LlmCredential.provider == name)
    )
    if credential is None:
        raise NotFoundError(f'no stored key for provider "{provider[:40]}"', field="provider")
    removed = LlmKeyView(credential.provider, credential.api_key_hint, credential.updated_at)
    session.delete(credential)
    session.flush()
    return removed
