"""Idempotency records: a key is held before the request runs, answers its repeats once done, and refuses reuse."""

from datetime import UTC, datetime, timedelta

import pytest

from app.errors import ConflictError, InvalidInputError
from app.extensions import db
from app.services import idempotency
from app.services.idempotency import StoredResponse
from tests import factories

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BODY = b'{"symbol": "BTC/USDT", "signal_source": "rules:rsi_reversion"}'


def claim(user, key="k-1", body=BODY, now=NOW, path="/api/v1/analyze"):
    fingerprint = idempotency.request_fingerprint("POST", path, body)
    return idempotency.claim(db.session, user.id, key, "POST", path, fingerprint, now)


def test_the_first_use_holds_the_key_and_a_repeat_gets_the_stored_response(app):
    user = factories.user(db.session)
    first = claim(user)
    assert first.record_id is not None and first.stored is None

    with pytest.raises(ConflictError) as in_progress:
        claim(user)
    assert in_progress.value.code == "IDEMPOTENCY_IN_PROGRESS"

    idempotency.complete(db.session, first.record_id, StoredResponse(201, '{"id": 7}', "/api/v1/watches/7"), NOW)
    db.session.commit()
    repeat = claim(user, body=b'{"signal_source":"rules:rsi_reversion","symbol":"BTC/USDT"}')  # same JSON content
    assert repeat.stored == StoredResponse(201, '{"id": 7}', "/api/v1/watches/7")


def test_the_same_key_with_another_body_or_path_is_a_conflict(app):
    user = factories.user(db.session)
    first = claim(user)
    idempotency.complete(db.session, first.record_id, StoredResponse(200, "{}", None), NOW)
    db.session.commit()
    for body, path in ((b'{"symbol": "ETH/USDT"}', "/api/v1/analyze"), (BODY, "/api/v1/backtests")):
        with pytest.raises(ConflictError) as reused:
            claim(user, body=body, path=path)
        assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_keys_are_per_user_and_a_released_key_runs_again(app):
    user, other = factories.user(db.session), factories.user(db.session)
    first = claim(user)
    assert claim(other).record_id is not None  # another user's identical key is theirs
    idempotency.release(db.session, first.record_id)
    assert claim(user).record_id is not None


def test_a_stale_holder_and_an_expired_record_are_taken_over(app):
    user = factories.user(db.session)
    claim(user, key="stale")
    assert claim(user, key="stale", now=NOW + idempotency.STALE_AFTER + timedelta(seconds=1)).record_id is not None

    done = claim(user, key="old")
    idempotency.complete(db.session, done.record_id, StoredResponse(200, "{}", None), NOW)
    db.session.commit()
    later = NOW + idempotency.RETENTION + timedelta(seconds=1)
    assert claim(user, key="old", now=later).record_id is not None
    assert idempotency.purge(db.session, later + idempotency.RETENTION) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\nkey"])
def test_a_bad_key_is_refused_naming_the_header(app, key):
    user = factories.user(db.session)
    with pytest.raises(InvalidInputError) as refused:
        claim(user, key=key)
    assert refused.value.field == "Idempotency-Key"
