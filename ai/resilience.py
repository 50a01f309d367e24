"""Retries with backoff and jitter for temporary provider failures, and a circuit breaker per provider."""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ai.providers.base import ProviderError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 8.0

    def delay(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full jitter: a random wait up to the exponential bound, so many clients do not retry in lockstep."""
        # Annotated: typeshed types `int ** int` as Any (a negative exponent gives a float).
        bound: float = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return bound * rng()


def call_with_retries[T](
    call: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Retry only what may succeed later (429, 5xx, timeouts); auth and invalid requests fail at once."""
    attempt = 1
    while True:
        try:
            return call()
        except ProviderError as error:
            if not error.retryable or attempt >= policy.max_attempts:
                raise
            wait = policy.delay(attempt, rng)
            if error.retry_after_seconds is not None:
                # Honour the provider's Retry-After, but never wait longer than the policy's cap.
                wait = max(wait, min(error.retry_after_seconds, policy.max_delay_seconds))
            sleep(wait)
            attempt += 1


class CircuitBreaker:
    """After `failure_threshold` failed calls in a row a provider is skipped for `cooldown_seconds`."""

    def __init__(
        self, failure_threshold: int = 3, cooldown_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    def allows_call(self) -> bool:
        if self._opened_at is None:
            return True
        if self._clock() - self._opened_at >= self.cooldown_seconds:
            # Half-open: let one call through; its result closes or re-opens the breaker.
            self._opened_at = None
            self._failures = self.failure_threshold - 1
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
