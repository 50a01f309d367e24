import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from exchanges.vault import (
    CredentialVault,
    VaultDecryptionError,
    VaultKeyError,
    generate_key,
    mask_secret,
    parse_keys,
)


@given(st.text(max_size=200))
def test_round_trip(secret):
    vault = CredentialVault([generate_key()])
    token = vault.encrypt(secret)
    # A short plaintext can occur in base64 by chance; a real key is long and must not.
    assert len(secret) < 12 or secret not in token
    assert vault.decrypt(token) == secret


def test_rotation_keeps_old_secrets_readable_and_moves_them_to_the_new_key():
    old, new = generate_key(), generate_key()
    token = CredentialVault([old]).encrypt("binance-secret")
    rotating = CredentialVault([new, old])
    assert rotating.decrypt(token) == "binance-secret"
    rotated = rotating.rotate(token)
    assert CredentialVault([new]).decrypt(rotated) == "binance-secret"
    with pytest.raises(VaultDecryptionError):
        CredentialVault([old]).decrypt(rotated)


def test_wrong_key_gives_a_clear_error():
    token = CredentialVault([generate_key()]).encrypt("x")
    with pytest.raises(
        VaultDecryptionError, match="cannot be decrypted with the configured STEADYHAND_ENCRYPTION_KEYS"
    ):
        CredentialVault([generate_key()]).decrypt(token)


def test_bad_key_is_named_by_position_only():
    good = Fernet.generate_key().decode()
    with pytest.raises(VaultKeyError, match="key #2") as error:
        parse_keys(f"{good},abc-not-a-key", "STEADYHAND_ENCRYPTION_KEYS")
    assert "abc-not-a-key" not in str(error.value)


@pytest.mark.parametrize(
    ("secret", "masked"),
    [("abcd", "****"), ("sk-1234567890abcdef", "sk******cdef"), ("", "")],
)
def test_mask(secret, masked):
    assert mask_secret(secret) == masked
