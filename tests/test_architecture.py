"""The layers of ARCHITECTURE.md, enforced: the domain packages stay Flask-free; services never import a web or CLI
framework; front ends call services and never query the database themselves."""

import ast

import pytest

from tests.conftest import PROJECT_ROOT

DOMAIN_PACKAGES = ("ai", "risk", "exchanges", "backtest")
FORBIDDEN = ("flask", "flask_sqlalchemy", "flask_login", "flask_wtf", "flask_migrate", "werkzeug", "app")
FRONT_ENDS = ("app/web", "app/api", "app/commands", "app/jobs")
# What services must not know about: who calls them and how.
FRAMEWORKS = ("flask", "flask_login", "flask_wtf", "click", "werkzeug")


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def python_files(folder):
    root = PROJECT_ROOT / folder
    return sorted(root.rglob("*.py")) if root.is_dir() else []


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_domain_package_never_imports_flask_or_app(package):
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {module}"
        for path in python_files(package)
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_risk_imports_nothing_from_ai_or_exchanges():
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {module}"
        for path in python_files("risk")
        for module in imported_modules(path)
        if module.split(".")[0] in ("ai", "exchanges")
    ]
    assert offenders == []


def test_services_never_import_a_web_or_cli_framework():
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {module}"
        for path in python_files("app/services")
        for module in imported_modules(path)
        if module.split(".")[0] in FRAMEWORKS
    ]
    assert offenders == []


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_front_ends_never_query_the_database_themselves(front_end):
    """No sqlalchemy, no persistence, no select(): a front end asks a service."""
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}: {module}"
        for path in python_files(front_end)
        for module in imported_modules(path)
        if module.split(".")[0] == "sqlalchemy" or module.startswith("app.persistence")
    ]
    offenders += [
        f"{path.relative_to(PROJECT_ROOT)}: calls {name}()"
        for path in python_files(front_end)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        for name in [getattr(node.func, "attr", getattr(node.func, "id", ""))]
        if name in ("select", "scalars", "scalar", "execute", "query")
    ]
    assert offenders == []


def test_the_architecture_test_sees_the_layers_it_guards():
    """A renamed folder must not make the rules above pass vacuously."""
    for folder in ("app/services", "app/commands", "app/web", *DOMAIN_PACKAGES):
        assert python_files(folder), folder
