"""Faults found by trying `analyze` and `cache export` as a new user would: dates outside the stored data, a fallback
chain whose AI providers were silently skipped, and an export that overwrote any file."""

import json

import pytest

from app.extensions import db
from app.models import Analysis
from tests import factories

STORED = "stored: 2017-08-17 05:00 -> 2024-09-06 03:00 UTC"


@pytest.fixture
def stocked(app):
    user = factories.user(db.session, email="faults@example.com", display_name="Faults")
    factories.paper_account(db.session, user, name="Paper")
    for name in ("binance_BTCUSDT_1h_2017-08_2021-06.csv", "binance_BTCUSDT_1h_2024-01_2024-09.csv"):
        factories.candles(db.session, name)
    db.session.commit()
    return app


def analyze(app, *args):
    return app.test_cli_runner().invoke(args=["analyze", "BTC/USDT", "--signals", "rules:sma_cross", *args])


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("2030-01-01", f"until 2030-01-01 00:00 UTC is after the stored BTC/USDT 1h candles ({STORED})"),
        ("2010-01-01", f"until 2010-01-01 00:00 UTC is before the stored BTC/USDT 1h candles ({STORED})"),
        ("2022-06-01", "until 2022-06-01 00:00 UTC falls in a gap of the stored BTC/USDT 1h candles: the latest bar"),
        ("2017-08-20", "not enough BTC/USDT 1h candles up to 2017-08-20 00:00 UTC: 68 stored, 201 needed"),
    ],
)
def test_a_date_outside_the_stored_data_is_named_with_the_stored_range(stocked, until, message):
    result = analyze(stocked, "--until", until)
    assert result.exit_code == 1
    assert message in result.output
    assert db.session.query(Analysis).count() == 0


@pytest.mark.parametrize("until", ["yesterday", "2024-13-01", "2024-01-12 25:00"])
def test_an_unreadable_until_is_one_line_naming_the_forms(stocked, until):
    result = analyze(stocked, "--until", until)
    assert (result.exit_code, result.output) == (
        1,
        f'Error: until must be a UTC date or time like "2024-01-12" or "2024-01-12 16:00", got "{until}" [--until]\n',
    )


def test_the_latest_stored_bar_is_analysed_when_no_date_is_given(stocked):
    result = analyze(stocked, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["bar_time"] == "2024-09-06T03:00:00+00:00"


def test_skipped_ai_providers_are_named_in_the_plain_output(stocked):
    result = stocked.test_cli_runner().invoke(
        args=["analyze", "BTC/USDT", "--signals", "deepseek -> claude -> rules:sma_cross"]
    )
    assert result.exit_code == 0, result.output
    assert "via rules:sma_cross [ok]" in result.output
    assert "skipped deepseek: PROVIDER_NOT_CONFIGURED (no API key: set DEEPSEEK_API_KEY" in result.output
    assert "skipped claude: PROVIDER_NOT_CONFIGURED (no API key: set ANTHROPIC_API_KEY" in result.output


def test_cache_export_never_overwrites_a_file_without_force(stocked, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("keep me\n")
    runner = stocked.test_cli_runner()
    refused = runner.invoke(args=["cache", "export", str(readme)])
    assert refused.exit_code == 1
    assert refused.output.strip() == f"Error: {readme} already exists: pass --force to overwrite it"
    assert readme.read_text() == "keep me\n"
    forced = runner.invoke(args=["cache", "export", str(readme), "--force"])
    assert forced.exit_code == 0 and "exported 0 cached response(s)" in forced.output
    assert readme.read_text() == ""


def test_cache_export_to_a_missing_folder_is_one_line(stocked, tmp_path):
    target = tmp_path / "no" / "such" / "folder" / "cache.jsonl"
    result = stocked.test_cli_runner().invoke(args=["cache", "export", str(target)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: cannot write {target}: No such file or directory [FILE]"
    assert not target.parent.exists()


def test_a_timeframe_without_candles_names_the_stored_ones(stocked):
    result = analyze(stocked, "--timeframe", "4h")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: no BTC/USDT 4h candles stored for binance (stored for BTC/USDT: 1h): import them first, "
        "or analyse live data from market ccxt:binance [--timeframe]"
    )
