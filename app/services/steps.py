"""Timing the steps of a run, so a run record says what it did, how long each step took, and where it failed."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepLog:
    """Steps in the order they ran: [{"step": "candles", "ms": 12.5, "outcome": "ok"}, ...].

    `failed_step` names the step an exception left; the exception itself propagates unchanged.
    """

    steps: list[dict[str, Any]] = field(default_factory=list)
    failed_step: str | None = None
    timer: Callable[[], float] = time.perf_counter

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = self.timer()
        try:
            yield
        except BaseException:
            self._record(name, started, "failed")
            self.failed_step = name
            raise
        self._record(name, started, "ok")

    def note(self, name: str, outcome: str) -> None:
        """A step that took no measurable time, or an outcome worth recording beside the steps (e.g. "HOLD")."""
        self.steps.append({"step": name, "ms": 0.0, "outcome": outcome})

    def _record(self, name: str, started: float, outcome: str) -> None:
        self.steps.append({"step": name, "ms": round((self.timer() - started) * 1000, 3), "outcome": outcome})
