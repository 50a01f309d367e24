"""The domain packages stay Flask-free: arrows point inwards, never back to app/."""

import ast

import pytest

from tests.conftest import PROJECT_ROOT

DOMAIN_PACKAGES = ("ai", "risk", "exchanges", "backtest")
FORBIDDEN = ("flask", "flask_sqlalchemy", "flask_login", "flask_wtf", "flask_migrate", "werkzeug", "app")


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_domain_package_never_imports_flask_or_app(package):
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {module}"
        for path in (PROJECT_ROOT / package).rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_risk_imports_nothing_from_ai_or_exchanges():
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {module}"
        for path in (PROJECT_ROOT / "risk").rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in ("ai", "exchanges")
    ]
    assert offenders == []
