"""Candles that have not closed yet (issue 9): an import leaves them out and says so, and an analysis from the
store decides on the last closed bar even when a forming or future bar is stored."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import current_settings
from app.errors import InvalidInputError
from app.extensions import db
from app.models import Candle as CandleRecord
from app.persistence.candles import import_candles
from app.services.analyses import AnalysisRequest, run_analysis
from app.services.credentials import signal_services
from app.services.markets import CandleFileImport, import_candle_file
from exchanges.candles import Candle
from tests import factories

HEADER = "timestamp,open,high,low,close,volume\n"
NOW = datetime(2026, 12, 1, 1, 7, tzinfo=UTC)  # inside the 01:00 hour, which is still forming
FORMING = datetime(2026, 12, 1, 1, tzinfo=UTC)


def write_hours(tmp_path, first, count):
    path = tmp_path / "candles.csv"
    stamps = [int((first + timedelta(hours=h)).timestamp() * 1000) for h in range(count)]
    path.write_text(HEADER + "".join(f"{stamp},100,110,90,105,2\n" for stamp in stamps))
    return path


def stored_open_times():
    return list(db.session.scalars(select(CandleRecord.open_time).order_by(CandleRecord.open_time)))


def test_the_forming_hour_and_the_next_one_are_left_out_and_counted(app, tmp_path):
    # 22:00, 23:00, 00:00 have closed at 01:07; 01:00 is forming and 02:00 has not opened.
    path = write_hours(tmp_path, FORMING - timedelta(hours=3), 5)
    request = CandleFileImport(path, "binance", "BTC/USDT", "1h")
    report = import_candle_file(db.session, current_settings(), request, clock=lambda: NOW)
    assert (report.rows_read, report.inserted, report.unclosed_dropped) == (5, 3, 2)
    assert (report.last, report.checked_at) == (FORMING - timedelta(hours=1), NOW)
    assert [t.replace(tzinfo=UTC) for t in stored_open_times()] == [
        FORMING - timedelta(hours=3),
        FORMING - timedelta(hours=2),
        FORMING - timedelta(hours=1),
    ]


def test_a_bar_that_closes_exactly_now_is_kept(app, tmp_path):
    path = write_hours(tmp_path, FORMING - timedelta(hours=2), 2)
    report = import_candle_file(
        db.session, current_settings(), CandleFileImport(path, "binance", "BTC/USDT", "1h"), clock=lambda: FORMING
    )
    assert (report.inserted, report.unclosed_dropped) == (2, 0)


def test_a_file_without_a_closed_candle_is_refused(app, tmp_path):
    path = write_hours(tmp_path, FORMING, 2)
    with pytest.raises(InvalidInputError, match="none of its 2 candle") as error:
        import_candle_file(
            db.session, current_settings(), CandleFileImport(path, "binance", "BTC/USDT", "1h"), clock=lambda: NOW
        )
    assert error.value.field == "file"
    assert db.session.scalar(select(func.count()).select_from(CandleRecord)) == 0


def test_an_analysis_decides_on_the_last_closed_bar_when_later_bars_are_stored(app):
    user = factories.user(db.session)
    factories.paper_account(db.session, user)
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")  # last bar opens 2024-09-06 03:00
    last_closed = datetime(2024, 9, 6, 3, tzinfo=UTC)
    forming, future = last_closed + timedelta(hours=1), last_closed + timedelta(hours=2)
    bar = {"open": Decimal(56000), "high": Decimal(57000), "low": Decimal(55000), "close": Decimal(56500)}
    import_candles(
        db.session, "binance", "BTC/USDT", "1h", [Candle(t, **bar, volume=Decimal(1)) for t in (forming, future)]
    )
    db.session.commit()
    request = AnalysisRequest(user_id=user.id, symbol="BTC/USDT", timeframe="1h", signals="rules:rsi_reversion")
    services = signal_services(db.session, current_settings(), user.id)
    result = run_analysis(
        db.session, current_settings(), request, services, now=lambda: forming + timedelta(minutes=30)
    )
    assert result.analysis.bar_time.replace(tzinfo=UTC) == last_closed
