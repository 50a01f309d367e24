"""Start-up stays cheap: the provider SDKs, ccxt and pandas-ta (with numba) take ~3 s to import, so each is imported
only where it is used. Loading the app and listing the CLI commands imports none of them; an offline rules analysis
needs pandas-ta for its indicators, but no provider SDK and no ccxt. Nothing here is timed (benchmarks/cli_startup.py
is): each check runs in a fresh interpreter and reads which modules it ended up with."""

import json
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT, clean_environ

HEAVY = ("anthropic", "ccxt", "openai", "pandas_ta")
# Runs `flask ARGS...` in this interpreter, then prints which of HEAVY it imported (after the command's own output).
PROBE = f"""
import atexit, json, sys
atexit.register(lambda: print("LOADED", json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules))))
from flask.cli import main
sys.argv = ["flask", *sys.argv[1:]]
main()
"""
# A migrated database with a user, a paper account and BTC/USDT 1h candles: what `analyze` reads.
SETUP = """
from decimal import Decimal
from pathlib import Path

from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from app.models import Account, AccountKind, User
from app.persistence.candles import import_candles
from exchanges.candles import read_candle_csv

app = create_app()
with app.app_context():
    upgrade()
    candles = read_candle_csv(Path("data/candles/binance_BTCUSDT_1h_2024-01_2024-09.csv"), "1h")
    import_candles(db.session, "binance", "BTC/USDT", "1h", candles)
    user = User(email="probe@example.com", display_name="probe", password_hash="!")
    balance = Decimal(100)
    db.session.add(user)
    db.session.add(
        Account(
            user=user, name="Paper", kind=AccountKind.PAPER, exchange_id="binance", quote_currency="USDT",
            starting_balance=balance, current_balance=balance, peak_equity=balance,
        )
    )
    db.session.commit()
"""


@pytest.fixture
def environ(tmp_path):
    return clean_environ(tmp_path / "instance", f"sqlite:///{tmp_path / 'probe.db'}")


def run_python(code, environ, *args):
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr or completed.stdout
    return completed.stdout


def loaded_by_flask(environ, *args):
    stdout = run_python(PROBE, environ, *args)
    marker = stdout.rstrip().splitlines()[-1]
    assert marker.startswith("LOADED "), stdout
    return stdout, json.loads(marker.removeprefix("LOADED "))


def test_importing_the_app_imports_no_sdk_ccxt_or_pandas_ta(environ):
    code = f"import sys, wsgi; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    assert run_python(code, environ).strip() == "[]"


def test_listing_the_cli_commands_imports_no_sdk_ccxt_or_pandas_ta(environ):
    stdout, loaded = loaded_by_flask(environ, "--app", "wsgi", "--help")
    assert "analyze" in stdout
    assert loaded == []


def test_an_offline_rules_analysis_imports_pandas_ta_but_no_sdk_or_ccxt(environ):
    run_python(SETUP, environ)
    stdout, loaded = loaded_by_flask(environ, "--app", "wsgi", "analyze", "BTC/USDT", "--signals", "rules:sma_cross")
    assert "via rules:sma_cross [ok]" in stdout
    # pandas-ta shows the probe sees what the command imports on the way; the rest is what it must not need.
    assert loaded == ["pandas_ta"]
