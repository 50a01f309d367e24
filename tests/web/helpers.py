"""Signing in through the real form (CSRF on) for the page tests."""

import re

PASSWORD = "a long enough password"


def csrf_token(client, path="/login") -> str:
    """The CSRF token of the form at `path`, as a browser would send it back."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page).group(1)


def sign_in(client, email="ada@example.com", password=PASSWORD, next_path=None, remember=False):
    url = "/login" + (f"?next={next_path}" if next_path else "")
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    return client.post(url, data={**data, "remember": "y"} if remember else data)


def post_form(client, path: str, data: dict, form_path: str | None = None):
    """POST `data` to `path` with the CSRF token of the page at `form_path` (default: `path`)."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, form_path or path)})


def page_text(response) -> str:
    """The page's text as a reader sees it: tags dropped, whitespace collapsed (entities left as sent)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))
