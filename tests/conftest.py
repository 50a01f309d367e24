"""Shared fixtures: one migrated database per backend (SQLite always, PostgreSQL when reachable)."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import make_url

from app import create_app
from app.extensions import db, limiter

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _postgres_status() -> tuple[str | None, str]:
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)
    libpq_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        psycopg.connect(libpq_url, connect_timeout=3).close()
    except psycopg.Error as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        return None, f"PostgreSQL not reachable at TEST_DATABASE_URL ({first_line})"
    return url, ""


POSTGRES_URL, POSTGRES_SKIP_REASON = _postgres_status()


def _require_postgres() -> str:
    if POSTGRES_URL is None:
        if os.environ.get("STEADYHAND_REQUIRE_POSTGRES"):
            pytest.fail(f"STEADYHAND_REQUIRE_POSTGRES is set but {POSTGRES_SKIP_REASON}")
        pytest.skip(POSTGRES_SKIP_REASON)
    return POSTGRES_URL


class PostgresSchema:
    """A private schema per test database, so runs never see each other's tables."""

    def __init__(self, base_url: str) -> None:
        self.name = f"sh_test_{uuid.uuid4().hex[:12]}"
        self._libpq_url = make_url(base_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(self._libpq_url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{self.name}"')
        self.url = (
            make_url(base_url)
            .update_query_dict({"options": f"-csearch_path={self.name}"})
            .render_as_string(hide_password=False)
        )

    def drop(self) -> None:
        with psycopg.connect(self._libpq_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def make_empty_database(backend: str, directory: Path) -> tuple[str, PostgresSchema | None]:
    if backend == "sqlite":
        return f"sqlite:///{directory / f'{uuid.uuid4().hex[:8]}.db'}", None
    schema = PostgresSchema(_require_postgres())
    return schema.url, schema


def clean_environ(instance_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell or .env leaks into a test."""
    return {
        "STEADYHAND_ENV": "test",
        "STEADYHAND_INSTANCE_PATH": str(instance_path),
        "DATABASE_URL": database_url,
        **extra,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    url, schema = make_empty_database(backend, tmp_path)
    yield url
    if schema:
        schema.drop()


def migrated_apps(tmp_path_factory, name: str, **extra: str):
    """A generator for a session fixture: `get(backend)` builds (once per backend) an app on a migrated database
    with `extra` environment variables; the databases go when the session ends."""
    apps: dict[str, Flask] = {}
    schemas: list[PostgresSchema] = []

    def get(backend: str) -> Flask:
        if backend not in apps:
            directory = tmp_path_factory.mktemp(f"{name}-{backend}")
            url, schema = make_empty_database(backend, directory)
            if schema:
                schemas.append(schema)
            app = create_app(environ=clean_environ(directory, url, **extra))
            with app.app_context():
                upgrade()
            apps[backend] = app
        return apps[backend]

    yield get
    for app in apps.values():
        with app.app_context():
            db.engine.dispose()
    for schema in schemas:
        schema.drop()


def emptied_after(app: Flask) -> Iterator[Flask]:
    """`app` in an app context for one test; every table and the rate limits' counts are emptied afterwards."""
    with app.app_context():
        yield app
        limiter.reset()
        db.session.rollback()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        db.session.remove()


@pytest.fixture(scope="session")
def app_factory(tmp_path_factory):
    """Build (once per backend) an app on a migrated database; tables are emptied after each test."""
    yield from migrated_apps(tmp_path_factory, "instance")


@pytest.fixture
def app(app_factory, backend: str) -> Iterator[Flask]:
    yield from emptied_after(app_factory(backend))


@pytest.fixture
def client(app: Flask):
    # Each test signs in from its own address, so the sign-in rate limit counts per test.
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.1"
    return client


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()
