"""The sandbox must run where Django is not set up (`python submissions/sandbox/server.py`, other processes
of the test suite), so no module of it may import Django, not even through another module.

A fresh interpreter is the only honest place to check: in this one, pytest-django has imported Django long ago.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = next(folder for folder in Path(__file__).resolve().parents if (folder / "submissions" / "sandbox").is_dir())

# Imports every module of the package and notes, the first time Django is asked for, which of our modules
# asked (innermost first: the module with the import statement, then those importing it).
PROBE = """
import importlib, json, pkgutil, sys

importers = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "django" and not importers:
            frame = sys._getframe(1)
            while frame is not None:
                module = frame.f_globals.get("__name__", "")
                if module.startswith("submissions") and module not in importers:
                    importers.append(module)
                frame = frame.f_back
        return None  # only watching: the real finders do the importing

sys.meta_path.insert(0, Watch())
import submissions.sandbox as package

imported = [package.__name__]
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(info.name)
    imported.append(info.name)
django = sorted(name for name in sys.modules if name == "django" or name.startswith("django."))
print(json.dumps({"imported": imported, "importers": importers, "django": django[:20]}))
assert "django" not in sys.modules, f"Django imported by {' <- '.join(importers) or '?'}: {django[:20]}"
"""


def test_no_sandbox_module_imports_django():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"the probe failed:\n{result.stdout}\n{result.stderr}"
    report = json.loads(result.stdout)
    # Proof that the walk saw the package, not an empty folder: the modules the rest of the project uses.
    assert {"submissions.sandbox", "submissions.sandbox.server", "submissions.sandbox.store"} <= set(report["imported"])
    assert report["importers"] == [] and report["django"] == [], report


def test_no_sandbox_source_imports_django_even_inside_a_function():
    """The probe above sees imports that run at import time; this also sees those that would run later."""
    package = ROOT / "submissions" / "sandbox"
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            # Django itself, or another part of the app, which may well import it.
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] == "django"
                or (name.split(".")[0] == "submissions" and not name.startswith("submissions.sandbox"))
            ]
    assert len(list(package.rglob("*.py"))) > 5  # the scan saw the package
    assert found == []
