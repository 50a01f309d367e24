import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app import create_app, current_settings
from app.config import ConfigError, environment_with_dotenv, instance_secret, load_settings
from tests.conftest import PROJECT_ROOT

GOOD_SECRET = "s" * 48


def settings_for(tmp_path: Path, **environ: str):
    return load_settings({"STEADYHAND_INSTANCE_PATH": str(tmp_path), **environ})


def test_local_defaults_use_sqlite_in_the_instance_folder(tmp_path):
    settings = settings_for(tmp_path)
    assert settings.env == "local"
    assert settings.database_url == f"sqlite:///{tmp_path / 'steadyhand.db'}"
    assert settings.deepseek_base_url == "https://api.deepseek.com"
    assert settings.anthropic_base_url == "https://api.anthropic.com"
    assert settings.redis_url is None
    assert settings.log_format == "text"


def test_local_secrets_are_generated_once_persisted_and_private(tmp_path):
    first = settings_for(tmp_path)
    second = settings_for(tmp_path)
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 32
    assert first.encryption_keys == second.encryption_keys
    Fernet(first.encryption_keys[0])  # a usable key
    for name in ("secret_key", "encryption.key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} is readable by others: {oct(mode)}"


def test_concurrent_first_starts_agree_on_one_secret(tmp_path):
    barrier = threading.Barrier(8)
    results = []

    def start():
        barrier.wait()
        results.append(instance_secret(tmp_path / "shared_secret", lambda: os.urandom(16).hex()))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["shared_secret"]  # no temporary file left behind


@pytest.mark.parametrize("missing", ["SECRET_KEY", "STEADYHAND_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_explicit_secrets(tmp_path, missing):
    environ = {
        "STEADYHAND_ENV": "production",
        "SECRET_KEY": GOOD_SECRET,
        "STEADYHAND_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    del environ[missing]
    with pytest.raises(ConfigError, match=f"{missing} must be set explicitly"):
        settings_for(tmp_path, **environ)
    assert not (tmp_path / "secret_key").exists() or missing != "SECRET_KEY"


def test_production_starts_with_explicit_secrets_and_logs_json(tmp_path):
    key = Fernet.generate_key().decode()
    settings = settings_for(
        tmp_path, STEADYHAND_ENV="production", SECRET_KEY=GOOD_SECRET, STEADYHAND_ENCRYPTION_KEYS=key
    )
    assert settings.is_production
    assert settings.encryption_keys == (key,)
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL is not a valid database URL"),
        ({"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL uses 'mysql'"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too short"),
        ({"STEADYHAND_ENCRYPTION_KEYS": "not-a-fernet-key"}, "key #1 is not a valid Fernet key"),
        ({"STEADYHAND_ENCRYPTION_KEYS": " , "}, "STEADYHAND_ENCRYPTION_KEYS is empty"),
        ({"STEADYHAND_ENV": "staging"}, "STEADYHAND_ENV='staging' is not one of"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not one of"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is not one of"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL must start with redis://"),
        ({"DEEPSEEK_BASE_URL": "api.deepseek.com"}, "DEEPSEEK_BASE_URL must be an http"),
        ({"ANTHROPIC_BASE_URL": "ftp://x"}, "ANTHROPIC_BASE_URL must be an http"),
        ({"STEADYHAND_DATA_DIR": "/nonexistent/steadyhand"}, "STEADYHAND_DATA_DIR"),
    ],
)
def test_malformed_configuration_is_named(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        settings_for(tmp_path, **environ)


def test_errors_never_echo_secret_values(tmp_path):
    secret_url = "postgresql://trader:hunter2-very-secret@db:5432/x?sslmode=require&bad=%"
    key = Fernet.generate_key().decode()
    with pytest.raises(ConfigError) as error:
        settings_for(tmp_path, STEADYHAND_ENCRYPTION_KEYS=f"{key},{key[:-3]}")
    assert "key #2" in str(error.value)
    assert key[:-3] not in str(error.value)
    settings = settings_for(tmp_path, DATABASE_URL=secret_url)
    assert "hunter2-very-secret" in settings.secret_values()


def test_postgres_urls_use_psycopg3(tmp_path):
    for given in ("postgres://u@h/db", "postgresql://u@h/db"):
        assert settings_for(tmp_path, DATABASE_URL=given).database_url == "postgresql+psycopg://u@h/db"


def test_several_encryption_keys_keep_their_order(tmp_path):
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    assert settings_for(tmp_path, STEADYHAND_ENCRYPTION_KEYS=" , ".join(keys)).encryption_keys == tuple(keys)


def test_dotenv_fills_in_but_the_environment_wins(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DEEPSEEK_API_KEY=from-file\nANTHROPIC_API_KEY=from-file\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-environment")
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    environ = environment_with_dotenv(dotenv)
    assert environ["DEEPSEEK_API_KEY"] == "from-file"
    assert environ["ANTHROPIC_API_KEY"] == "from-environment"


def test_create_app_overrides_apply_to_settings_and_flask(tmp_path):
    app = create_app(
        {"LOG_LEVEL": "warning", "WTF_CSRF_ENABLED": False},
        environ={"STEADYHAND_INSTANCE_PATH": str(tmp_path), "STEADYHAND_ENV": "test"},
    )
    with app.app_context():
        assert current_settings().log_level == "WARNING"
    assert app.config["WTF_CSRF_ENABLED"] is False
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")


def test_cli_reports_bad_configuration_in_one_line_and_fails(tmp_path):
    environ = {
        "PATH": os.environ["PATH"],
        "STEADYHAND_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "mysql://root:topsecret@localhost/db",
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "seed-demo"],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "steadyhand: configuration error: DATABASE_URL uses 'mysql'; Steadyhand supports sqlite and postgresql"
    ]
    assert "topsecret" not in result.stderr + result.stdout
