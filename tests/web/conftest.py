"""Page tests sign in as Ada (a paper account of 100 USDT); `stranger` is another user whose ids must 404."""

from decimal import Decimal

import pytest

from app.extensions import db
from tests import factories
from tests.web.helpers import PASSWORD, sign_in


@pytest.fixture
def ada(app):
    user = factories.user(db.session, email="ada@example.com", password=PASSWORD, display_name="Ada")
    factories.paper_account(db.session, user, name="Ada paper", balance=Decimal("100"))
    db.session.commit()
    return user


@pytest.fixture
def signed_in(client, ada):
    """The test client signed in as Ada."""
    assert sign_in(client).status_code == 302
    return client


@pytest.fixture
def stranger(app):
    user = factories.user(db.session, email="eve@example.com", password=PASSWORD, display_name="Eve")
    factories.paper_account(db.session, user, name="Eve paper", balance=Decimal("100"))
    db.session.commit()
    return user
