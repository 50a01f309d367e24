from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
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
        (
            "99999999999999999999,100,110,90,105,1\n",
            HEADER,
            "candles.csv:2: timestamp 99999999999999999999 is out of range",
        ),
        ("123456789012,100,110,90,105,1\n", HEADER, "candles.csv:2: timestamp 123456789012 is out of range"),
        ("-1,100,110,90,105,1\n", HEADER, "candles.csv:2: timestamp -1 is out of range"),
        (
            rows(1) + f"{(T0 + HOUR_MS) * 1000},100,110,90,105,1.5\n",
            HEADER,
            "candles.csv:3: timestamp 1704070800000000 is in microseconds, but the file's first row is in milliseconds",
        ),
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


@pytest.mark.parametrize(("unit", "per_ms"), [("s", Fraction(1, 1000)), ("ms", 1), ("us", 1000), ("ns", 1_000_000)])
def test_seconds_milliseconds_microseconds_and_nanoseconds_give_the_same_candles(tmp_path, unit, per_ms):
    expected = read_candle_csv(write(tmp_path, rows(3)), "1h")
    body = "".join(f"{int((T0 + i * HOUR_MS) * per_ms)},100,110,90,105,1.5\n" for i in range(3))
    path = tmp_path / f"candles_{unit}.csv"
    path.write_text(HEADER + body)
    candles = read_candle_csv(path, "1h")
    assert candles == expected
    assert candles[0].open_time == datetime(2024, 1, 1, tzinfo=UTC)


def test_a_binance_microsecond_row_reads_as_its_hour(tmp_path):
    # A row of Binance's public spot files (data.binance.vision) since 2025: open time in microseconds.
    path = write(tmp_path, "1735689600000000,93576.00,94509.42,93489.03,94401.14,755.87\n")
    [candle] = read_candle_csv(path, "1h")
    assert candle.open_time == datetime(2025, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_any_integer_timestamp_is_a_candle_or_a_line_numbered_error_never_a_traceback(timestamp):
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "candles.csv"
        path.write_text(f"{HEADER}{timestamp},100,110,90,105,1\n")
        try:
            [candle] = read_candle_csv(path, "1m")
        except CandleFileError as error:
            assert str(error).startswith(f"{path}:2: ")
        else:
            assert datetime(2001, 9, 9, tzinfo=UTC) <= candle.open_time < datetime(2286, 11, 21, tzinfo=UTC)


def test_an_excel_byte_order_mark_before_the_header_is_skipped(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + rows(2)).encode())
    assert [c.open_time for c in read_candle_csv(path, "1h")] == [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 1, tzinfo=UTC),
    ]
