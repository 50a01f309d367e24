"""Wiring the AI layer for one user: providers with the right keys, the database ledger and cache."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from ai.providers.base import SignalProvider
from ai.providers.claude import ClaudeProvider
from ai.providers.deepseek import DeepSeekProvider
from ai.resilience import CircuitBreaker
from ai.signals import SignalServices
from app.ai_storage import SqlBudgetLedger, SqlResponseCache
from app.config import Settings
from app.models import LlmCredential
from exchanges.vault import CredentialVault

# One breaker per provider and process: a provider failing for one analysis is failing for the next one too.
_BREAKERS: dict[str, CircuitBreaker] = {}


def provider_keys(session: Session, settings: Settings, user_id: int) -> dict[str, str]:
    """The user's own stored key wins over the service's environment key."""
    keys = {"deepseek": settings.deepseek_api_key, "claude": settings.anthropic_api_key}
    vault = CredentialVault(settings.encryption_keys)
    for credential in session.scalars(select(LlmCredential).where(LlmCredential.user_id == user_id)):
        keys[credential.provider] = vault.decrypt(credential.api_key_encrypted)
    return {provider: key for provider, key in keys.items() if key}


def signal_services(session: Session, settings: Settings, user_id: int) -> SignalServices:
    keys = provider_keys(session, settings, user_id)
    providers: dict[str, SignalProvider] = {}
    if "deepseek" in keys:
        providers["deepseek"] = DeepSeekProvider(keys["deepseek"], settings.deepseek_base_url)
    if "claude" in keys:
        providers["claude"] = ClaudeProvider(keys["claude"], settings.anthropic_base_url)
    engine = session.get_bind()
    return SignalServices(
        providers=providers,
        cache=SqlResponseCache(engine),
        ledger=SqlBudgetLedger(engine),
        breakers=_BREAKERS,
    )
