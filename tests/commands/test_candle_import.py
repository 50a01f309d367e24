"""`flask --app wsgi import-candles` on both databases: idempotent, all-or-nothing, gaps reported."""

import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from app.models import Candle
from tests.conftest import PROJECT_ROOT

HEADER = "timestamp,open,high,low,close,volume\n"
T0 = 1704067200000
HOUR_MS = 3_600_000
BTC_2024 = PROJECT_ROOT / "data" / "candles" / "binance_BTCUSDT_1h_2024-01_2024-09.csv"


def stored_candles() -> int:
    return db.session.scalar(select(func.count()).select_from(Candle))


def write_hours(tmp_path, hours, name="candles.csv", close="105"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{T0 + h * HOUR_MS},100,110,90,{close},2\n" for h in hours))
    return path


def import_file(runner, path, *extra):
    return runner.invoke(args=["import-candles", str(path), "--symbol", "BTC/USDT", "--timeframe", "1h", *extra])


def test_reimporting_a_file_inserts_nothing_twice(runner):
    first = import_file(runner, BTC_2024)
    assert first.exit_code == 0, first.output
    assert "5,980 read, 5,980 new, 0 already stored; no gaps" in first.output
    second = import_file(runner, BTC_2024)
    assert second.exit_code == 0, second.output
    assert "5,980 read, 0 new, 5,980 already stored" in second.output
    assert stored_candles() == 5_980
    last = db.session.scalars(select(Candle).order_by(Candle.open_time.desc())).first()
    # The file's last row: 1725591600000,56738,56840.88,56532,56588,639.59002
    assert (last.high, last.volume) == (Decimal("56840.88"), Decimal("639.59002"))


def test_overlapping_import_adds_only_the_new_bars_and_reports_gaps(runner, tmp_path):
    assert import_file(runner, write_hours(tmp_path, range(0, 10), "a.csv")).exit_code == 0
    result = import_file(runner, write_hours(tmp_path, [*range(5, 12), *range(15, 20)], "b.csv"))
    assert result.exit_code == 0, result.output
    assert "12 read, 7 new, 5 already stored; 1 gap(s), 3 missing bar(s)" in result.output
    assert "gap: 2024-01-01 12:00 -> 2024-01-01 14:00 UTC (3 bar(s) missing)" in result.output
    assert stored_candles() == 17


def test_rows_that_differ_from_stored_ones_are_kept_and_flagged(runner, tmp_path):
    assert import_file(runner, write_hours(tmp_path, range(3), "a.csv")).exit_code == 0
    result = import_file(runner, write_hours(tmp_path, range(3), "b.csv", close="106"))
    assert result.exit_code == 0
    assert "warning: 3 row(s) differ from the stored candles and were not changed" in result.output
    assert set(db.session.scalars(select(Candle.close))) == {Decimal("105")}


def test_a_corrupt_file_imports_nothing_and_names_the_line(runner, tmp_path):
    path = tmp_path / "corrupt.csv"
    shutil.copy(BTC_2024, path)
    with path.open("a") as handle:
        handle.write("1725595200000,100,90,95,96,1\n")  # high below low, after 5,980 good rows
    result = import_file(runner, path)
    assert result.exit_code == 1
    assert f"Error: {path}:5982: high 90 is below the open, close or low" in result.output
    assert stored_candles() == 0


def test_unknown_symbol_timeframe_or_exchange_fail_with_a_named_problem(runner, tmp_path):
    path = write_hours(tmp_path, range(3))
    cases = [
        (["--symbol", "XYZ/USDT", "--timeframe", "1h"], "unknown symbol 'XYZ/USDT' on binance"),
        (
            ["--symbol", "BTC/USDT", "--timeframe", "90m"],
            'timeframe must be one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w, got "90m"',
        ),
        (
            ["--symbol", "BTC/USDT", "--timeframe", "1h", "--exchange", "nope"],
            "no markets snapshot for exchange 'nope'",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(args=["import-candles", str(path), *args])
        assert result.exit_code == 1, args
        assert message in result.output
    assert stored_candles() == 0


def test_lowercase_symbols_are_accepted(runner, tmp_path):
    result = runner.invoke(
        args=["import-candles", str(write_hours(tmp_path, range(2))), "--symbol", "btc/usdt", "--timeframe", "1h"]
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Candle.symbol).limit(1)) == "BTC/USDT"


def test_a_binance_microsecond_file_imports_as_its_hours(runner, tmp_path):
    path = tmp_path / "BTCUSDT-1h-2025-01.csv"
    path.write_text(HEADER + "".join(f"{(T0 + h * HOUR_MS) * 1000},100,110,90,105,2\n" for h in range(3)))
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert "binance BTC/USDT 1h 2024-01-01 00:00 -> 2024-01-01 02:00 UTC: 3 read, 3 new" in result.output
    assert stored_candles() == 3


def test_an_out_of_range_timestamp_is_one_line_naming_the_line(runner, tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text(HEADER + f"{T0},100,110,90,105,2\n" + "99999999999999999999,100,110,90,105,2\n")
    result = import_file(runner, path)
    assert result.exit_code == 1
    assert f"Error: {path}:3: timestamp 99999999999999999999 is out of range" in result.output
    assert "Traceback" not in result.output
    assert stored_candles() == 0


def test_the_current_hour_and_the_next_one_are_left_out_with_a_note(runner, tmp_path):
    current_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = current_hour - timedelta(hours=3)
    path = tmp_path / "live.csv"
    path.write_text(
        HEADER + "".join(f"{int((first + timedelta(hours=h)).timestamp() * 1000)},100,110,90,105,2\n" for h in range(5))
    )
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert "5 read, 3 new, 0 already stored" in result.output
    assert "note: 2 candle(s) not closed yet at " in result.output
    assert "were left out" in result.output
    assert stored_candles() == 3
    latest = db.session.scalar(select(func.max(Candle.open_time)))
    assert latest.replace(tzinfo=UTC) == current_hour - timedelta(hours=1)
