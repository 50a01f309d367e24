"""Health check, sign-in and the landing page through Flask's test client, CSRF on."""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from app.models import Backtest, RunStatus, WatchRun
from tests import factories
from tests.conftest import clean_environ

PASSWORD = "a long enough password"


@pytest.fixture
def user(app):
    user = factories.user(db.session, email="ada@example.com", password=PASSWORD, display_name="Ada")
    factories.paper_account(db.session, user, name="My paper", current_balance=Decimal("87.5"))
    db.session.commit()
    return user


def csrf_token(client, path="/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)


def sign_in(client, email="ada@example.com", password=PASSWORD, next_path=None):
    url = "/login" + (f"?next={next_path}" if next_path else "")
    return client.post(url, data={"email": email, "password": password, "csrf_token": csrf_token(client)})


def test_healthz_reports_a_reachable_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unreachable_database_without_details(tmp_path):
    missing = tmp_path / "no-such-folder" / "db.sqlite"
    app = create_app(environ=clean_environ(tmp_path, f"sqlite:///{missing}"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "unreachable"}
    assert "no-such-folder" not in response.get_data(as_text=True)


def test_landing_page_needs_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_sign_in_shows_the_users_accounts(client, user):
    response = sign_in(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Welcome, Ada" in page
    assert "My paper" in page
    assert "87.50 USDT" in page
    assert "No candles stored" in page


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, user):
    response = sign_in(client, password="nope")
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert sign_in(client, email="nobody@example.com").status_code == 401


def test_a_form_without_csrf_token_is_refused(client, user):
    response = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_next_only_redirects_within_the_site(client, user):
    assert sign_in(client, next_path="//evil.example/steal").headers["Location"] == "/"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert sign_in(client, next_path="/healthz").headers["Location"] == "/healthz"


def test_sign_out(client, user):
    sign_in(client)
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_failed_sign_ins_are_throttled_per_email_and_per_address(tmp_path):
    app = create_app(
        environ=clean_environ(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"), config={"WTF_CSRF_ENABLED": False}
    )
    with app.app_context():
        upgrade()
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "192.0.2.77"
        # Guessing one user's password: five failures, then that email is refused whatever the address.
        one_email = [client.post("/login", data={"email": "a@b.co", "password": "x"}).status_code for _ in range(6)]
        client.environ_base["REMOTE_ADDR"] = "192.0.2.78"
        elsewhere = client.post("/login", data={"email": "A@b.co", "password": "x"}).status_code
        # Trying many emails from one address: ten sign-ins a minute, then that address is refused.
        client.environ_base["REMOTE_ADDR"] = "192.0.2.79"
        many = [client.post("/login", data={"email": f"u{n}@b.co", "password": "x"}).status_code for n in range(11)]
        db.engine.dispose()
    assert one_email == [401] * 5 + [429]
    assert elsewhere == 429
    assert many == [401] * 10 + [429]


def test_rate_limits_are_shared_through_redis_when_configured(tmp_path):
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable at {url}: {error}")
    environ = clean_environ(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", REDIS_URL=url)
    address = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    statuses = []
    for _ in range(2):  # two app instances stand in for two web workers
        app = create_app(environ=environ, config={"WTF_CSRF_ENABLED": False})
        with app.app_context():
            upgrade()
            client = app.test_client()
            client.environ_base["REMOTE_ADDR"] = address
            statuses += [
                client.post("/login", data={"email": f"{uuid.uuid4().hex}@b.co", "password": "x"}).status_code
                for _ in range(6)
            ]
            db.engine.dispose()
    assert statuses.count(429) == 2, statuses
    assert statuses[-2:] == [429, 429]


def test_analyses_and_backtests_are_listed_and_only_own_reports_are_served(client, user, runner):
    factories.candles(db.session, "binance_BTCUSDT_1h_2024-01_2024-09.csv")
    db.session.commit()
    assert runner.invoke(args=["analyze", "BTC/USDT", "--signals", "rules:sma_cross"]).exit_code == 0
    assert (
        runner.invoke(
            args=["backtest", "--symbol", "BTC/USDT", "--signals", "rules:sma_cross", "--start", "2024-08-01"]
        ).exit_code
        == 0
    )
    sign_in(client)
    assert "rules:sma_cross" in client.get("/analyses").get_data(as_text=True)
    page = client.get("/backtests").get_data(as_text=True)
    assert "rules:sma_cross" in page
    detail = re.search(r'href="(/backtests/\d+)"', page).group(1)
    link = re.search(r'href="(/backtests/\d+/report)"', client.get(detail).get_data(as_text=True)).group(1)
    response = client.get(link)
    assert response.status_code == 200 and b"<svg" in response.data
    assert client.get("/backtests/999999/report").status_code == 404
    other = factories.user(db.session, email="eve@example.com", password=None, display_name="Eve")
    theirs = Backtest(
        user_id=other.id, exchange_id="binance", symbol="BTC/USDT", timeframe="1h", signal_source="rules:sma_cross"
    )
    db.session.add(theirs)
    db.session.commit()
    assert client.get(f"/backtests/{theirs.id}/report").status_code == 404


def test_the_watches_page_shows_each_watch_with_its_schedule_and_last_run(client, user):
    watch = factories.watch(db.session, user, auto_execute=False)
    db.session.add(
        WatchRun(
            watch_id=watch.id,
            bar_time=datetime(2024, 1, 16, 9, tzinfo=UTC),
            trigger="schedule",
            status=RunStatus.FAILED,
            steps=[],
            error_code="RUN_TIMEOUT",
            error_message="still running after 120 s (worker a:1): stopped waiting",
        )
    )
    db.session.commit()
    sign_in(client)
    page = client.get("/watches").get_data(as_text=True)
    row = re.search(rf'<tr data-testid="watch-{watch.id}">(.*?)</tr>', page, re.S).group(1)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))
    assert "BTC/USDT 1h" in text and "rules:sma_cross" in text and "advice only" in text.lower()
    assert "2024-01-16 09:00 UTC" in text and "RUN_TIMEOUT" in text, text
    assert "still running after 120 s (worker a:1): stopped waiting" in text, text
