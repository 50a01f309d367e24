"""`seed-demo` again: bundled candle files imported before with the same bytes are not read again (a second `make run`
starts in seconds); a changed file, or one whose candles were deleted, is imported as the first time."""

import shutil

from sqlalchemy import delete, func, select

from app.extensions import db
from app.models import Candle, ImportedCandleFile
from tests.conftest import PROJECT_ROOT

CANDLES = PROJECT_ROOT / "data" / "candles"
DAILY_FILES = (
    ("binance_BTCUSDT_1d_2017-08_2021-06.csv", "BTC/USDT", "1d"),
    ("binance_BTCUSDT_1d_2024-01_2024-09.csv", "BTC/USDT", "1d"),
)
DAY_MS = 86_400_000


def never_read(path, timeframe):
    raise AssertionError(f"{path} was read again")


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(Candle))


def test_a_second_seed_reads_no_candle_file_and_says_so(runner, monkeypatch):
    monkeypatch.setattr("app.services.demo.DEMO_CANDLE_FILES", DAILY_FILES)
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "1,394 read, 1,394 new" in first.output and "249 read, 249 new" in first.output
    records = db.session.scalars(select(ImportedCandleFile).order_by(ImportedCandleFile.file_name)).all()
    assert [(r.file_name, r.exchange_id, r.symbol, r.timeframe, r.row_count) for r in records] == [
        ("binance_BTCUSDT_1d_2017-08_2021-06.csv", "binance", "BTC/USDT", "1d", 1_394),
        ("binance_BTCUSDT_1d_2024-01_2024-09.csv", "binance", "BTC/USDT", "1d", 249),
    ]
    assert all(len(r.sha256) == 64 and r.imported_at.tzinfo is not None for r in records)

    monkeypatch.setattr("app.services.demo.read_candle_csv", never_read)
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[:2] == [
        "candles binance BTC/USDT 1d binance_BTCUSDT_1d_2017-08_2021-06.csv: "
        "already imported (unchanged), 1,394 rows not read again",
        "candles binance BTC/USDT 1d binance_BTCUSDT_1d_2024-01_2024-09.csv: "
        "already imported (unchanged), 249 rows not read again",
    ]
    assert "demo: created nothing new (already seeded)" in second.output
    assert stored() == 1_394 + 249


def test_a_changed_file_is_imported_again(runner, monkeypatch, tmp_path):
    name = "binance_BTCUSDT_1d_2024-01_2024-09.csv"
    shutil.copy(CANDLES / name, tmp_path / name)
    monkeypatch.setattr("app.services.demo.DEMO_CANDLE_FILES", ((name, "BTC/USDT", "1d"),))
    monkeypatch.setattr("app.services.demo._candle_file", lambda settings, file_name: tmp_path / file_name)
    assert "249 read, 249 new" in runner.invoke(args=["seed-demo"]).output

    last_line = (tmp_path / name).read_text().strip().splitlines()[-1]
    next_day = int(last_line.split(",")[0]) + DAY_MS
    with (tmp_path / name).open("a") as handle:
        handle.write(f"{next_day},56000,57000,55000,56500,1200\n")
    changed = runner.invoke(args=["seed-demo"])
    assert changed.exit_code == 0, changed.output
    assert "250 read, 1 new, 249 already stored" in changed.output
    assert "already imported" not in changed.output

    monkeypatch.setattr("app.services.demo.read_candle_csv", never_read)
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    assert "already imported (unchanged), 250 rows not read again" in again.output


def test_deleted_candles_are_imported_again_from_an_unchanged_file(runner, monkeypatch):
    monkeypatch.setattr("app.services.demo.DEMO_CANDLE_FILES", DAILY_FILES[1:])
    runner.invoke(args=["seed-demo"])
    db.session.execute(delete(Candle))
    db.session.commit()

    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "249 read, 249 new" in result.output
    assert stored() == 249
