"""The one migration creates exactly the models' schema on both backends, and downgrades to nothing."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from app.extensions import db
from tests.conftest import clean_environ


def test_upgrade_matches_the_models_and_downgrade_removes_everything(empty_database, tmp_path):
    app = create_app(environ=clean_environ(tmp_path, empty_database))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert set(db.metadata.tables) <= tables

        downgrade(revision="base")
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}

        upgrade()  # and back up again from base
        with db.engine.connect() as connection:
            assert set(db.metadata.tables) <= set(inspect(connection).get_table_names())
        db.engine.dispose()
