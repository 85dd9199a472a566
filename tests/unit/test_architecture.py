"""The spine's two single owners, checked in the source: only the lifecycle moves a job's status, only the
notifier sends webhooks. (import-linter checks the arrows between rooms; this checks inside the store.)"""

from __future__ import annotations

import ast
from pathlib import Path

import ltx2

PACKAGE = Path(ltx2.__file__).parent


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent).as_posix(), ast.parse(path.read_text(), str(path))


def _updates_job(node: ast.AST) -> bool:
    """True for a chain like update(Job).where(…).values(…)."""
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "update":
            return bool(node.args) and getattr(node.args[0], "id", None) == "Job"
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def status_writers() -> set[str]:
    found = set()
    for name, tree in _modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "values"
                and _updates_job(node.func.value)
                and any(k.arg in ("status", None) for k in node.keywords)
            ):  # None: **values
                found.add(name)
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "status" and getattr(t.value, "id", "") in ("job", "row")
                for t in node.targets
            ):
                found.add(name)
    return found


def webhook_senders() -> set[str]:
    return {
        name
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Deliverer"
    }


def test_only_the_lifecycle_moves_a_job_status():
    assert status_writers() == {"ltx2/store/lifecycle.py"}


def test_only_the_notifier_sends_webhooks():
    assert webhook_senders() == {"ltx2/store/notifier.py"}


def test_the_checks_see_a_status_write_elsewhere(tmp_path):
    # The scan must notice the kind of code it forbids (the old cancel wrote the status itself).
    sneaky = ast.parse("s.execute(update(Job).where(Job.id == i).values(status=CANCELED))")
    call = next(n for n in ast.walk(sneaky) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "values")
    assert _updates_job(call.func.value) and call.keywords[0].arg == "status"
