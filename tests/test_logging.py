import json
import logging

import pytest

from app.logging_setup import REDACTED, Redactor, configure_logging


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_extra_fields_and_mask_configured_secrets(capsys):
    configure_logging("INFO", "json", ["super-secret-key-123", "sk-live-abcdefgh"])
    logging.getLogger("steadyhand.test").info(
        "calling provider with key %s", "sk-live-abcdefgh", extra={"user_id": 7, "model": "deepseek-flash"}
    )
    line = capsys.readouterr().err.strip()
    entry = json.loads(line)
    assert entry["message"] == f"calling provider with key {REDACTED}"
    assert (entry["level"], entry["logger"], entry["user_id"], entry["model"]) == (
        "INFO",
        "steadyhand.test",
        7,
        "deepseek-flash",
    )
    assert entry["time"].endswith("+00:00")


def test_exceptions_are_logged_with_secrets_masked(capsys):
    configure_logging("INFO", "text", ["hunter2-database-password"])
    try:
        raise RuntimeError("connection to postgresql://app:hunter2-database-password@db/x failed")
    except RuntimeError:
        logging.getLogger("steadyhand.test").exception("database down")
    output = capsys.readouterr().err
    assert "hunter2" not in output
    assert "RuntimeError" in output


@pytest.mark.parametrize(
    "leak",
    [
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature",
        "x-api-key: sk-ant-api03-abcdefghijklmnop",
        "apiKey=abcd1234efgh5678",
        '{"secret": "s3cr3t-value-here"}',
        "redis://:p4ssw0rd-long@cache:6379/0",
        "using sk-abcdefghijklmnopqrstuvwx for DeepSeek",
        "key sh_abcdefghijklmnop0123456789ABCDEFGHIJ used from a script",
    ],
)
def test_credentials_not_in_configuration_are_masked_by_shape(leak):
    masked = Redactor([])(leak)
    assert REDACTED in masked
    for fragment in ("eyJhbGciOiJIUzI1NiJ9", "abcdefghijklmnop", "abcd1234efgh5678", "s3cr3t-value", "p4ssw0rd"):
        assert fragment not in masked


def test_reconfiguring_replaces_the_handler_instead_of_doubling_lines(capsys):
    configure_logging("INFO", "text", [])
    configure_logging("INFO", "text", [])
    logging.getLogger("steadyhand.test").warning("once")
    assert capsys.readouterr().err.count("once") == 1
