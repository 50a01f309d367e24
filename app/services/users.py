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
        user: User | None = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
        if user is None:
            raise NotFoundError(f'no user with email "{email.strip()}"', field="user")
        return user
    shown = 10
    users = session.scalars(select(User).order_by(User.id).limit(shown + 1)).all()
    if not users:
        raise InvalidInputError("no users yet: seed the demo (seed-demo) or create a user first", field="user")
    if len(users) > 1:
        # The command line is the operator's: naming the users is what lets them pick one.
        emails = ", ".join(user.email for user in users[:shown])
        if len(users) > shown:
            more = (session.scalar(select(func.count()).select_from(User)) or 0) - shown
            emails += f" and {more} more"
        raise InvalidInputError(f"there are several users ({emails}): name one by email", field="user")
    return users[0]


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email (any case) and password, or None: the caller cannot tell which was wrong."""
    user: User | None = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None or not user.is_active or not user.check_password(password):
        return None
    return user


def active_user(session: Session, user_id: int) -> User | None:
    """The user with this id if the account is active (sessions of a deactivated user end)."""
    user = session.get(User, user_id)
    return user if user is not None and user.is_active else None
