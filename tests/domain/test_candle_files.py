from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges.candles import CandleFileError, find_gaps, read_candle_csv
from exchanges.timeframes import UnknownTimeframeError
from tests.conftest import PROJECT_ROOT

HEADER = "timestamp,open,high,low,close,volume\n"
T0 = 1704067200000  # 2024-01-01 00:00 UTC
HOUR_MS = 3_600_000


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "candles.csv"
    path.write_text(header + body)
    return path


def rows(count: int, start: int = T0, step: int = HOUR_MS) -> str:
    return "".join(f"{start + i * step},100,110,90,105,1.5\n" for i in range(count))


def test_reads_the_bundled_binance_file_with_its_known_gaps():
    path = PROJECT_ROOT / "data" / "candles" / "binance_BTCUSDT_1h_2017-08_2021-06.csv"
    candles = read_candle_csv(path, "1h")
    assert len(candles) == 33_411
    assert candles[0].open_time == datetime(2017, 8, 17, 5, tzinfo=UTC)
    assert candles[0].open == Decimal("4308.83")
    gaps = find_gaps([c.open_time for c in candles], "1h")
    assert (len(gaps), sum(g.missing_bars for g in gaps)) == (8, 16)  # as PROVENANCE.md records
    assert sum(1 for c in candles if c.volume == 0) > 100


def test_columns_may_come_in_any_order_and_case(tmp_path):
    path = write(tmp_path, f"1.5,105,90,110,100,{T0}\n", header="Volume,Close,Low,High,Open,Timestamp\n")
    [candle] = read_candle_csv(path, "1h")
    assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (100, 110, 90, 105, Decimal("1.5"))


@pytest.mark.parametrize(
    ("body", "header", "message"),
    [
        ("", "", "the file is empty"),
        ("", HEADER, "header but no candles"),
        (rows(1), "timestamp,open,high,low,close\n", "missing column(s) volume"),
        (f"{T0},100,110,90\n", HEADER, "candles.csv:2: expected 6 columns, found 4"),
        (f"{T0},abc,110,90,105,1\n", HEADER, "candles.csv:2: open 'abc' is not a number"),
        (f"{T0},NaN,110,90,105,1\n", HEADER, "open 'NaN' is not a finite number"),
        ("2024-01-01,100,110,90,105,1\n", HEADER, "timestamp '2024-01-01' is not an integer"),
        (f"{T0 // 1000},100,110,90,105,1\n", HEADER, "looks like seconds"),
        (f"{T0},0,110,90,105,1\n", HEADER, "open 0 must be positive"),
        (f"{T0},100,110,90,105,-1\n", HEADER, "volume -1 must not be negative"),
        (f"{T0},100,99,90,105,1\n", HEADER, "high 99 is below the open, close or low"),
        (f"{T0},100,110,101,105,1\n", HEADER, "low 101 is above the open or close"),
        (rows(1) + rows(1), HEADER, "candles.csv:3: open time 2024-01-01 00:00 UTC duplicates"),
        (rows(1, T0 + HOUR_MS) + rows(1), HEADER, "candles.csv:3: open time 2024-01-01 00:00 UTC is before"),
        (rows(2, T0 + 60_000), HEADER, "is not on a 1h boundary"),
        (rows(5, step=24 * HOUR_MS), HEADER, "rows are usually 1d apart, not 1h"),
    ],
)
def test_bad_files_are_refused_with_the_line_and_the_problem(tmp_path, body, header, message):
    path = write(tmp_path, body, header)
    with pytest.raises(CandleFileError) as error:
        read_candle_csv(path, "1h")
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_a_missing_or_binary_file_is_a_clear_error(tmp_path):
    with pytest.raises(CandleFileError, match="cannot read the file"):
        read_candle_csv(tmp_path / "absent.csv", "1h")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CandleFileError, match="cannot read the file"):
        read_candle_csv(binary, "1h")


def test_unknown_timeframe_names_the_supported_ones(tmp_path):
    with pytest.raises(UnknownTimeframeError, match=r"unknown timeframe '7h' \(supported: 1m, "):
        read_candle_csv(write(tmp_path, rows(3)), "7h")


def test_weekly_candles_open_on_mondays(tmp_path):
    monday = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)  # 2024-01-01 was a Monday
    week = 7 * 24 * HOUR_MS
    assert len(read_candle_csv(write(tmp_path, rows(3, monday, week)), "1w")) == 3
    with pytest.raises(CandleFileError, match="not on a 1w boundary"):
        read_candle_csv(write(tmp_path, rows(3, monday + 24 * HOUR_MS, week)), "1w")


@given(st.integers(min_value=2, max_value=300), st.data())
def test_gaps_account_for_exactly_the_missing_bars(length, data):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    full = [start + timedelta(hours=i) for i in range(length)]
    # Keep the first and last bar so every removal is inside the series.
    removed = data.draw(st.sets(st.integers(min_value=1, max_value=length - 2)) if length > 2 else st.just(set()))
    series = [t for i, t in enumerate(full) if i not in removed]
    gaps = find_gaps(series, "1h")
    assert sum(g.missing_bars for g in gaps) == len(removed)
    reconstructed = {g.first_missing + timedelta(hours=k) for g in gaps for k in range(g.missing_bars)}
    assert reconstructed == {full[i] for i in removed}
    assert all(g.last_missing == g.first_missing + timedelta(hours=g.missing_bars - 1) for g in gaps)
