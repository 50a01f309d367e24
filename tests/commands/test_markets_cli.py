"""`flask --app wsgi markets refresh|list`: a real Binance market missing from the bundled snapshot (SOL/USDT) can be
imported once the markets are refreshed (ccxt against a recorded exchangeInfo); a failed refresh is one line."""

import json
import re

import requests
import responses

from tests.conftest import PROJECT_ROOT

EXCHANGE_INFO_URL = "https://api.binance.com/api/v3/exchangeInfo"
EXCHANGE_INFO = json.loads((PROJECT_ROOT / "tests" / "recordings" / "binance" / "exchangeInfo_spot.json").read_text())
HOUR_MS = 3_600_000
T0 = 1_732_924_800_000  # 2024-11-30 00:00 UTC


def sol_csv(tmp_path):
    path = tmp_path / "binance_SOLUSDT_1h.csv"
    rows = "".join(f"{T0 + h * HOUR_MS},235.1,236.4,234.2,235.9,{1200 + h}.5\n" for h in range(3))
    path.write_text("timestamp,open,high,low,close,volume\n" + rows)
    return path


def import_sol(runner, path):
    return runner.invoke(args=["import-candles", str(path), "--symbol", "SOL/USDT", "--timeframe", "1h"])


def refresh(runner, **fake):
    with responses.RequestsMock() as mock:
        mock.get(EXCHANGE_INFO_URL, **(fake or {"json": EXCHANGE_INFO}))
        return runner.invoke(args=["markets", "refresh", "--exchange", "binance"])


def test_sol_usdt_imports_after_the_markets_are_refreshed(runner, tmp_path):
    path = sol_csv(tmp_path)
    before = import_sol(runner, path)
    assert before.exit_code == 1
    assert before.output.strip() == (
        "Error: unknown symbol 'SOL/USDT' on binance: not in the stored binance markets (bundled snapshot of "
        "2025-01-01, 2 market(s): BTC/USDT, ETH/USDT); if binance lists it, refresh them (markets refresh) [--symbol]"
    )

    refreshed = refresh(runner)
    assert refreshed.exit_code == 0, refreshed.output
    assert re.match(
        r"binance: 6 spot markets stored, fetched \d{4}-\d\d-\d\d \d\d:\d\d UTC "
        r"\(before: bundled snapshot of 2025-01-01, 2 markets\); 4 new, 0 gone\n"
        r"  new: BCC/USDT, BNB/USDT, ETH/BTC, SOL/USDT\n$",
        refreshed.output,
    ), refreshed.output

    after = import_sol(runner, path)
    assert after.exit_code == 0, after.output
    assert "binance SOL/USDT 1h 2024-11-30 00:00 -> 2024-11-30 02:00 UTC: 3 read, 3 new" in after.output

    listed = runner.invoke(args=["markets", "list", "--quote", "USDT"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert re.match(r"binance: 5 of 6 markets, fetched \d{4}-\d\d-\d\d \d\d:\d\d UTC$", lines[0])
    assert [line.split()[0] for line in lines[1:]] == ["BCC/USDT", "BNB/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert "SOL/USDT         amount step 0.001" in listed.output


def test_a_failed_refresh_prints_one_line_and_keeps_the_markets(runner, tmp_path):
    assert refresh(runner).exit_code == 0
    first = runner.invoke(args=["markets", "list"]).output.splitlines()[0]

    failed = refresh(runner, body=requests.ConnectionError("Name or service not known"))
    assert failed.exit_code == 1
    assert failed.output.startswith("Error: binance markets unavailable (NetworkError")
    assert len(failed.output.strip().splitlines()) == 1

    assert runner.invoke(args=["markets", "list"]).output.splitlines()[0] == first
    assert import_sol(runner, sol_csv(tmp_path)).exit_code == 0


def test_listing_before_any_refresh_shows_the_bundled_snapshot_and_how_to_refresh(runner):
    listed = runner.invoke(args=["markets", "list"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[0] == (
        "binance: 2 markets, bundled snapshot of 2025-01-01; refresh them with: flask --app wsgi markets refresh"
    )


def test_an_unknown_exchange_is_named_with_its_option(runner):
    result = runner.invoke(args=["markets", "refresh", "--exchange", "nope"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        'Error: exchange must be an exchange id ccxt knows (e.g. binance, kraken, coinbase), got "nope" [--exchange]'
    )
