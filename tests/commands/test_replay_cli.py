"""`replay status | restart` on SQLite and PostgreSQL: exact output while playing and once finished, a restart
refused in one line naming what went past the replay's start, and a restart that plays it from the start again."""

from datetime import UTC, datetime, timedelta

import pytest

from app.commands import replay as command
from app.extensions import db
from tests import factories

WALL_START = datetime(2030, 5, 1, 9, tzinfo=UTC)
SERIES = "replay of binance BTC/USDT 1d, BTC/USDT 1h, ETH/USDT 1d, ETH/USDT 1h 2024-01-16 05:00 -> 2024-09-06 04:00"


class FakeWall:
    def __init__(self):
        self.now = WALL_START

    def __call__(self):
        return self.now


@pytest.fixture
def wall(monkeypatch):
    clock = FakeWall()
    monkeypatch.setattr(command, "system_clock", clock)
    return clock


def run(runner, *args):
    return runner.invoke(args=["replay", *args])


def test_status_while_playing_and_once_finished(app, runner, wall):
    playing = run(runner, "status")
    assert playing.exit_code == 0, playing.output
    assert playing.output == (
        f"{SERIES} at 360x: now 2024-01-16 05:00\n"
        "started 2030-05-01 09:00:00 UTC (wall clock), finishes 2030-05-02 00:36:00 UTC and then holds at its last "
        "bar\n"
    )
    wall.now = datetime(2030, 5, 3, tzinfo=UTC)
    finished = run(runner, "status")
    assert finished.output == (
        f"{SERIES} at 360x: finished at 2024-09-06 04:00 (held at the last bar)\n"
        "started 2030-05-01 09:00:00 UTC (wall clock), finished 2030-05-02 00:36:00 UTC: no new bar closes, so "
        "watches do not run\n"
        "play it again from the start with: flask --app wsgi replay restart\n"
    )


def test_restart_is_refused_in_one_line_while_a_watch_went_past_the_start(app, runner, wall):
    user = factories.user(db.session)
    watch = factories.watch(db.session, user, last_bar_at=datetime(2024, 9, 6, 3, tzinfo=UTC))
    db.session.commit()
    refused = run(runner, "restart", "--by", "ops")
    assert refused.exit_code == 1
    assert refused.output == (
        f"Error: cannot restart the replay: 1 watch (#{watch.id}) already went past its start 2024-01-16 05:00 (up "
        "to 2024-09-06 04:00) and their clocks only move forward, so they would sit out the new pass; delete those "
        "watches (with their run history) and add new ones\n"
    )


def test_restart_plays_the_replay_from_its_start_again(app, runner, wall):
    run(runner, "status")
    wall.now = datetime(2030, 5, 3, tzinfo=UTC)
    restarted = run(runner, "restart", "--by", "ops")
    assert restarted.exit_code == 0, restarted.output
    assert restarted.output == (
        "replay restarted: it plays again from its start\n"
        f"{SERIES} at 360x: now 2024-01-16 05:00\n"
        "started 2030-05-03 00:00:00 UTC (wall clock), finishes 2030-05-03 15:36:00 UTC and then holds at its last "
        "bar\n"
        "a web app started earlier picks it up on its next request; start the scheduler again now\n"
    )
    wall.now += timedelta(seconds=25)
    assert run(runner, "status").output.startswith(f"{SERIES} at 360x: now 2024-01-16 07:30\n")
