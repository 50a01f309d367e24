"""One `make run` per test process for the browser tests (starting it migrates and imports ~82,000 candles)."""

import pytest

from tests.e2e.served import serve


@pytest.fixture(scope="session")
def served_app(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("make-run") / "instance") as served:
        yield served
