"""Which user a command acts for, on SQLite and PostgreSQL: the only user, or the one named; with several and none
named, the refusal lists them so the operator can pick."""

import pytest

from app.errors import InvalidInputError, NotFoundError
from app.extensions import db
from app.services.users import resolve_user
from tests import factories


def test_the_only_user_needs_no_name_and_a_named_one_is_found_in_any_case(app):
    ada = factories.user(db.session, email="ada@example.com")
    db.session.commit()
    assert resolve_user(db.session, None) == ada
    assert resolve_user(db.session, " ADA@example.com ") == ada
    with pytest.raises(NotFoundError, match=r'no user with email "bob@example\.com"'):
        resolve_user(db.session, "bob@example.com")


def test_several_users_and_none_named_lists_them(app):
    for name in ("ada", "bob"):
        factories.user(db.session, email=f"{name}@example.com")
    db.session.commit()
    with pytest.raises(InvalidInputError) as refusal:
        resolve_user(db.session, None)
    assert refusal.value.message == "there are several users (ada@example.com, bob@example.com): name one by email"
    assert refusal.value.field == "user"
    for n in range(10):
        factories.user(db.session, email=f"user{n}@example.com")
    db.session.commit()
    with pytest.raises(InvalidInputError, match=r"user7@example.com and 2 more\): name one by email$"):
        resolve_user(db.session, None)
