"""Architecture rules that a grep can check, kept by tests.

- Services own transactions (`hub.db.transactional`): a route module (`routes.py`,
  `*_routes.py`) never commits, rolls back or opens a transaction of its own.
- A module named routes holds routes: it defines a blueprint and registers at least one
  view on it.
- Commands (`cli.py`, `*_cli.py`) call services and never commit or roll back: the
  service's own transaction does (a command may open one with `session_scope` to call
  several services as one unit).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parents[2] / "hub"
#: Calls that begin or end a transaction: the services' business, never a route's.
TRANSACTION_CALLS = frozenset({"commit", "rollback", "session_scope", "transaction"})
ROUTE_DECORATORS = frozenset({"route", "get", "post", "put", "patch", "delete"})


def route_modules() -> list[Path]:
    found = {*HUB.rglob("routes.py"), *HUB.rglob("*_routes.py")}
    return sorted(p for p in found if "migrations" not in p.parts)


def transaction_calls(source: str) -> list[str]:
    """`line: name` of every call of a transaction method in `source`."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = (func.attr if isinstance(func, ast.Attribute)
                    else func.id if isinstance(func, ast.Name) else None)
            if name in TRANSACTION_CALLS:
                calls.append(f"{node.lineno}: {name}")
    return calls


def registered_views(source: str) -> int:
    """How many functions `source` registers on a blueprint (`@bp.get(...)` and the like)."""
    count = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(call, ast.Attribute) and call.attr in ROUTE_DECORATORS:
                    count += 1
                    break
    return count


def test_the_route_modules_are_found() -> None:
    names = {p.relative_to(HUB).as_posix() for p in route_modules()}
    assert {"api/routes.py", "api/admin_routes.py", "web/dashboard_routes.py"} <= names


@pytest.mark.parametrize("path", route_modules(), ids=lambda p: p.relative_to(HUB).as_posix())
def test_routes_leave_transactions_to_services(path: Path) -> None:
    calls = transaction_calls(path.read_text(encoding="utf-8"))
    assert not calls, (f"{path.relative_to(HUB)} begins or ends a transaction at {calls}; "
                       "call a service decorated with hub.db.transactional instead")


def command_modules() -> list[Path]:
    found = {*HUB.rglob("cli.py"), *HUB.rglob("*_cli.py")}
    return sorted(p for p in found if "migrations" not in p.parts)


@pytest.mark.parametrize("path", command_modules(),
                         ids=lambda p: p.relative_to(HUB).as_posix())
def test_commands_leave_commits_to_services(path: Path) -> None:
    calls = [c for c in transaction_calls(path.read_text(encoding="utf-8"))
             if c.endswith((": commit", ": rollback"))]
    assert not calls, (f"{path.relative_to(HUB)} commits or rolls back at {calls}; "
                       "call a service decorated with hub.db.transactional instead")


def test_the_command_modules_are_found() -> None:
    names = {p.relative_to(HUB).as_posix() for p in command_modules()}
    assert {"cli.py", "sync/cli.py", "web/cli.py", "sync/scheduler_cli.py"} <= names


@pytest.mark.parametrize("path", route_modules(), ids=lambda p: p.relative_to(HUB).as_posix())
def test_a_module_named_routes_registers_routes(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert "Blueprint(" in source and registered_views(source) > 0, (
        f"{path.relative_to(HUB)} registers no route: give it a name that says what it holds")


@pytest.mark.parametrize(("source", "expected"), [
    ("def view():\n    session.commit()\n", ["2: commit"]),
    ("def view():\n    db.session().rollback()\n", ["2: rollback"]),
    ("def view():\n    with db.get_db().session_scope() as s:\n        pass\n",
     ["2: session_scope"]),
    ("def view():\n    with transaction(session):\n        pass\n", ["2: transaction"]),
    ("def view():\n    return service.create(db.session())\n", []),
])
def test_the_scan_finds_transaction_calls(source: str, expected: list[str]) -> None:
    assert transaction_calls(source) == expected


def test_the_scan_counts_registered_views() -> None:
    source = ("bp = Blueprint('x', __name__)\n\n@bp.get('/a')\ndef a():\n    pass\n\n"
              "@bp.route('/b', methods=['POST'])\n@login_required\ndef b():\n    pass\n\n"
              "def helper():\n    pass\n")
    assert registered_views(source) == 2
    assert registered_views("def feeds_check():\n    pass\n") == 0
