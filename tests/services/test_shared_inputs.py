"""Shared analysis inputs: one load per key across threads, copies for every caller, bounded, never a failure."""

import threading
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from ai.indicators import compute_indicators
from app.services import analysis_inputs
from app.services.analysis_inputs import SharedInputs, indicators


def candles(bars: int = 260, start: float = 100.0) -> pd.DataFrame:
    index = pd.date_range(datetime(2024, 1, 1, tzinfo=UTC), periods=bars, freq="1h")
    close = start + np.sin(np.arange(bars) / 7.0) * 5 + np.arange(bars) * 0.1
    return pd.DataFrame(
        {"open": close - 0.5, "high": close + 1, "low": close - 1, "close": close, "volume": 10.0 + np.arange(bars)},
        index=index,
    )


def test_each_caller_gets_its_own_copy_of_one_load() -> None:
    shared = SharedInputs()
    loads = []

    def load() -> pd.DataFrame:
        loads.append(1)
        return candles()

    first = shared.get("k", load)
    first.loc[first.index[-1], "close"] = -1.0  # a caller changing its frame changes nobody else's
    second = shared.get("k", load)
    assert len(loads) == 1
    assert second["close"].iloc[-1] == candles()["close"].iloc[-1]
    assert second is not shared.get("k", load)


def test_threads_asking_for_one_key_at_once_wait_for_a_single_load() -> None:
    shared = SharedInputs()
    loads = []
    barrier = threading.Barrier(8)
    results: list[pd.DataFrame] = []

    def load() -> pd.DataFrame:
        loads.append(1)
        time.sleep(0.2)
        return candles()

    def ask() -> None:
        barrier.wait()
        results.append(shared.get("k", load))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(results) == 8 and all(frame.equals(candles()) for frame in results)


def test_a_failed_load_is_not_kept_and_waiters_load_on_their_own() -> None:
    shared = SharedInputs()
    started = threading.Event()
    calls = []

    def failing() -> pd.DataFrame:
        calls.append("failing")
        started.set()
        time.sleep(0.1)
        raise ConnectionError("exchange down")

    def working() -> pd.DataFrame:
        calls.append("working")
        return candles()

    waiter_result: list[pd.DataFrame] = []
    waiter = threading.Thread(target=lambda: (started.wait(), waiter_result.append(shared.get("k", working))))
    waiter.start()
    with pytest.raises(ConnectionError):
        shared.get("k", failing)
    waiter.join()
    assert waiter_result[0].equals(candles())
    assert calls == ["failing", "working"]
    assert shared.get("k", working).equals(candles())  # nothing was kept: the next caller loads
    assert calls == ["failing", "working", "working"]


def test_at_most_max_entries_least_recently_used_dropped_first() -> None:
    shared = SharedInputs(max_entries=2)
    shared.get("a", candles)
    shared.get("b", candles)
    shared.get("a", candles)  # a is now the most recently used
    shared.get("c", candles)
    assert len(shared) == 2
    loads = []
    shared.get("a", lambda: loads.append("a") or candles())
    shared.get("b", lambda: loads.append("b") or candles())
    assert loads == ["b"]


def test_disabled_loads_every_time() -> None:
    shared = SharedInputs()
    shared.enabled = False
    loads = []
    shared.get("k", lambda: loads.append(1) or candles())
    shared.get("k", lambda: loads.append(1) or candles())
    assert len(loads) == 2 and len(shared) == 0


def test_indicators_are_those_of_compute_indicators_and_keyed_by_the_candles_content(monkeypatch) -> None:
    monkeypatch.setattr(analysis_inputs, "shared_inputs", SharedInputs())
    frame = candles()
    expected = compute_indicators(frame)
    pd.testing.assert_frame_equal(indicators(frame), expected)
    pd.testing.assert_frame_equal(indicators(frame.copy()), expected)  # equal content: shared
    assert analysis_inputs.shared_inputs.hits == 1
    changed = frame.copy()
    changed.loc[changed.index[-1], "close"] += 1.0  # one value differs: computed afresh
    pd.testing.assert_frame_equal(indicators(changed), compute_indicators(changed))
    later = candles()
    later.index = later.index + pd.Timedelta(hours=1)  # same values on other bars: computed afresh
    indicators(later)
    assert analysis_inputs.shared_inputs.hits == 1 and analysis_inputs.shared_inputs.misses == 3
