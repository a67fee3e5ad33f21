"""The house rules as checks: the import contracts of .importlinter (import-linter), and no
function-local import of the project's own modules unless a ``# why:`` comment says why (a local
import hid two import cycles in recommendations for a long time)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("catalog", "tracking", "shop", "recommendations")
SKIP_PARTS = {"migrations", ".venv", "node_modules", "__pycache__"}


def _own(module: str | None, level: int) -> bool:
    if level:  # relative: always inside the project
        return True
    return bool(module) and module.split(".")[0] in PROJECT_PACKAGES


def local_imports_unexplained(source: str) -> list[tuple[int, str]]:
    """(line, text) of each import of a project module inside a function body without a comment
    starting ``# why:`` on its line or on the line above it."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found = []

    def explained(lineno: int) -> bool:
        here = lines[lineno - 1]
        above = lines[lineno - 2].strip() if lineno >= 2 else ""
        return "# why:" in here or above.startswith("# why:")

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if in_function and isinstance(child, ast.Import):
                if any(_own(a.name, 0) for a in child.names) and not explained(child.lineno):
                    found.append((child.lineno, lines[child.lineno - 1].strip()))
            elif in_function and isinstance(child, ast.ImportFrom):
                if _own(child.module, child.level) and not explained(child.lineno):
                    found.append((child.lineno, lines[child.lineno - 1].strip()))
            visit(child, inside)

    visit(tree, False)
    return found


def _project_files():
    for package in PROJECT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if SKIP_PARTS.isdisjoint(rel.parts) and "tests" not in rel.parts:
                yield rel, path


def test_no_unexplained_function_local_imports_of_project_modules():
    offenders = [f"{rel}:{line}: {text}" for rel, path in _project_files()
                 for line, text in local_imports_unexplained(path.read_text())]
    assert offenders == [], "function-local imports of project modules without a '# why:' comment:\n" + "\n".join(
        offenders)


def test_the_local_import_check_finds_one_and_accepts_a_why():
    bad = "def f():\n    from recommendations import training\n"
    assert local_imports_unexplained(bad) == [(2, "from recommendations import training")]
    assert local_imports_unexplained("def f():\n    from . import x\n") == [(2, "from . import x")]
    explained = "def f():\n    # why: app loading order\n    from recommendations import training\n"
    assert local_imports_unexplained(explained) == []
    assert local_imports_unexplained("def f():\n    import json\n    from django import db\n") == []
    assert local_imports_unexplained("from recommendations import training\n") == []


def _lint_imports(config: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--config", str(config), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_import_contracts_are_kept():
    result = _lint_imports(ROOT / ".importlinter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_the_import_contracts_fail_on_a_broken_rule(tmp_path):
    # A contract the code breaks today (tracking's tasks call tracking's services), so a linter that
    # silently checks nothing would fail this test.
    config = tmp_path / "broken.ini"
    config.write_text("[importlinter]\nroot_packages =\n    tracking\n\n"
                      "[importlinter:contract:broken]\nname = a rule the code breaks\ntype = forbidden\n"
                      "source_modules =\n    tracking.tasks\nforbidden_modules =\n    tracking.services\n")
    result = _lint_imports(config)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout or "broken" in result.stdout, result.stdout


def test_a_web_worker_starts_without_the_training_libraries(tmp_path):
    """What a web worker imports (the apps, the URLconf, the Celery tasks Celery discovers) leaves
    out pandas and scikit-learn: training and clustering load them when they run. pandas alone is
    ~34 MB per worker; the split of recommendations once pulled it in through training.py."""
    code = (
        "import os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shop.settings')\n"
        "import django; django.setup()\n"
        "import shop.urls\n"
        "from shop.celery import app; app.loader.import_default_modules()\n"
        "print(sorted(m for m in ('pandas', 'sklearn', 'optuna') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SHOP_VAR_DIR=str(tmp_path), ENV_FILE="/dev/null")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def request_parameters(source: str) -> list[tuple[int, str]]:
    """(line, function name) of each function with a parameter named ``request``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            if "request" in names:
                found.append((node.lineno, node.name))
    return found


def test_services_and_selectors_take_no_request():
    """Services and selectors take plain values (issue #15): the HTTP edge (views, API, middleware,
    ``tracking.http.visitor_from_request``) turns the request into them."""
    offenders = [f"{rel}:{line}: {name}" for rel, path in _project_files()
                 if path.name in {"services.py", "selectors.py"} or path.parent.name in {"services", "selectors"}
                 for line, name in request_parameters(path.read_text())]
    assert offenders == [], "services or selectors that take the request:\n" + "\n".join(offenders)
    assert request_parameters("def f(visitor, *, request=None):\n    pass\n") == [(1, "f")]
