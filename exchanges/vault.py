"""Encryption at rest for exchange and LLM credentials (Fernet; MultiFernet for key rotation).

Keys come from configuration (environment or the local instance's key file), never from the database.
The first key encrypts; every key decrypts, so a new key can be put in front and old rows re-encrypted.
"""

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultKeyError(ValueError):
    """A configured encryption key is unusable; the message never contains key material."""


class VaultDecryptionError(ValueError):
    """A stored secret cannot be decrypted with any configured key."""


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def parse_keys(text: str, source: str) -> list[str]:
    """Split a comma-separated key list and check each key, naming only its position and the source."""
    keys = [part.strip() for part in text.split(",") if part.strip()]
    if not keys:
        raise VaultKeyError(f"{source} is empty: expected one or more comma-separated Fernet keys")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise VaultKeyError(
                f"{source}: key #{position} is not a valid Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return keys


def mask_secret(secret: str) -> str:
    """What a user may see of a stored secret: enough to recognise it, never enough to use it."""
    if len(secret) <= 8:
        return "*" * len(secret)
    return f"{secret[:2]}{'*' * 6}{secret[-4:]}"


class CredentialVault:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise VaultKeyError("no encryption key configured")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise VaultDecryptionError(
                "a stored secret cannot be decrypted with the configured STEADYHAND_ENCRYPTION_KEYS "
                "(was the key that encrypted it removed?)"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt under the primary (first) key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise VaultDecryptionError(
                "a stored secret cannot be re-encrypted: no configured key decrypts it"
            ) from None
