"""Users: finding the one a command or request acts for."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import InvalidInputError, NotFoundError
from app.models import User


def resolve_user(session: Session, email: str | None) -> User:
    """The user with this email (any case), or the only user there is when no email is given.

    Raises `NotFoundError` for an unknown email, `InvalidInputError` when several users exist and none is named, or
    when there is no user at all.
    """
    if email:
        user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
        if user is None:
            raise NotFoundError(f'no user with email "{email.strip()}"', field="user")
        return user
    users = session.scalars(select(User).order_by(User.id).limit(2)).all()
    if not users:
        raise InvalidInputError("no users yet: seed the demo (seed-demo) or create a user first", field="user")
    if len(users) > 1:
        raise InvalidInputError("there are several users: name one by email", field="user")
    return users[0]
