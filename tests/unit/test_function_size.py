"""Shipped code stays readable: no function body in shared/ or functions/ over 60 lines.

Complexity (10) and statements (30) are ruff's checks (``shared/ruff.toml``); the length of a
body, docstring excluded, is this test's.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAX_BODY_LINES = 60


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = node.body
    first = body[0]
    has_docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    start = body[1].lineno if has_docstring and len(body) > 1 else first.lineno
    return (node.end_lineno or node.lineno) - start + 1


def long_functions(root: Path) -> list[str]:
    """``path:line name (n lines)`` of every function body over the limit under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = body_lines(node)
                if n > MAX_BODY_LINES:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_shipped_function_body_is_over_60_lines() -> None:
    # GIVEN the code that ships to Lambda
    # WHEN every function's body is measured
    long = long_functions(REPO / "shared") + long_functions(REPO / "functions")
    # THEN none is over the limit
    assert long == []


def test_the_measure_counts_the_body_without_the_docstring() -> None:
    # GIVEN a function with a 3-line docstring and a 2-line body
    source = 'def f():\n    """Doc.\n\n    More."""\n    x = 1\n    return x\n'
    [node] = ast.parse(source).body
    assert isinstance(node, ast.FunctionDef)
    # WHEN measured; THEN only the body counts
    assert body_lines(node) == 2
