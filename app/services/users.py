"""Users: signing up, signing in, changing a password, and finding the one a command or request acts for."""

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


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
MAX_NAME_LENGTH = 80


def _checked_password(password: str, field: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"{field} must be at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}", field=field
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInputError(f"{field} must be at most {MAX_PASSWORD_LENGTH} characters", field=field)
    return password


def _checked_email(email: str) -> str:
    address = email.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or any(char.isspace() for char in address):
        raise InvalidInputError(f'email must be an address like name@example.com, got "{address[:80]}"', field="email")
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidInputError(f"email must be at most {MAX_EMAIL_LENGTH} characters", field="email")
    return address


def sign_up(session: Session, email: str, password: str, display_name: str) -> User:
    """A new active user. The caller commits (with the paper account opened for them, in one unit of work).

    Raises `InvalidInputError` on `email` (not an address, too long, already registered in any case), `password`
    (shorter than 10 or longer than 256 characters) or `display_name` (empty or over 80 characters).
    """
    address = _checked_email(email)
    name = display_name.strip()
    if not name:
        raise InvalidInputError("display_name must not be empty", field="display_name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"display_name must be at most {MAX_NAME_LENGTH} characters", field="display_name")
    if session.scalar(select(User.id).where(func.lower(User.email) == address.lower())) is not None:
        raise InvalidInputError(f'email "{address}" is already registered: sign in instead', field="email")
    user = User(email=address, display_name=name)
    user.set_password(_checked_password(password, "password"))
    session.add(user)
    session.flush()
    return user


def change_password(session: Session, user_id: int, current_password: str, new_password: str) -> User:
    """Replace the user's password after checking the current one. The caller commits.

    Raises `InvalidInputError` on `current_password` when it is wrong, on `new_password` when it is too short or
    long or equals the current one; `NotFoundError` for an unknown or inactive user.
    """
    user = active_user(session, user_id)
    if user is None:
        raise NotFoundError(f"no user #{user_id}", field="user")
    if not user.check_password(current_password):
        raise InvalidInputError("current_password is not the password you sign in with", field="current_password")
    if current_password == new_password:
        raise InvalidInputError("new_password must differ from the current one", field="new_password")
    user.set_password(_checked_password(new_password, "new_password"))
    return user
