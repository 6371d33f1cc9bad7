"""The emulators read sms.ru and Mango from the reference, not through our clients.

If an emulator imported clinic.smsru or clinic.mango (to sign, parse or look up a code), a
misreading in the client would be mirrored by the emulator and every test would pass. So no
module under emulators/ may import them: checked on the source (every import form, and
module names handed to importlib), and at run time (importing every emulator module leaves
neither package in sys.modules).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EMULATORS = ROOT / "emulators"
FORBIDDEN = ("clinic.smsru", "clinic.mango")
_MODULE_NAME = re.compile(r"^[A-Za-z_][\w.]*$")
_DYNAMIC_IMPORTS = {"import_module", "__import__", "find_spec", "run_module", "import_string"}


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def forbidden_imports(source: str) -> list[str]:
    """Every way `source` reaches clinic.smsru / clinic.mango, as 'line N: what'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _forbidden(node.module):
                found.append(f"line {node.lineno}: from {node.module} import ...")
            else:  # from clinic import smsru / from clinic import mango as m
                found += [
                    f"line {node.lineno}: from {node.module} import {a.name}"
                    for a in node.names
                    if _forbidden(f"{node.module}.{a.name}")
                ]
        elif isinstance(node, ast.Call) and _call_name(node.func) in _DYNAMIC_IMPORTS:
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _forbidden(arg.value):
                    found.append(f"line {node.lineno}: {_call_name(node.func)}({arg.value!r})")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_NAME.match(node.value)
            and _forbidden(node.value)
        ):
            # A bare module name kept in a variable for a later import_module(name).
            found.append(f"line {node.lineno}: module name {node.value!r}")
    return found


def _emulator_sources() -> list[Path]:
    return sorted(EMULATORS.rglob("*.py"))


def test_there_are_emulator_modules_to_check() -> None:
    names = {p.relative_to(EMULATORS).as_posix() for p in _emulator_sources()}
    assert {"smsru/api.py", "smsru/callbacks.py", "mango/emulator.py", "mango/signing.py"} <= names


@pytest.mark.parametrize("path", _emulator_sources(), ids=lambda p: p.relative_to(EMULATORS).as_posix())
def test_emulator_module_does_not_import_the_clients(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import clinic.smsru",
        "import clinic.mango.signing as s",
        "from clinic.smsru import codes",
        "from clinic.smsru.webhook import sign",
        "from clinic import smsru",
        "from clinic import db, mango as m",
        "import importlib\nimportlib.import_module('clinic.smsru.codes')",
        "from importlib import import_module\nimport_module('clinic.mango')",
        "__import__('clinic.smsru')",
        "NAME = 'clinic.mango.clock'",
        "def f():\n    from clinic.mango.clock import ManualClock\n    return ManualClock",
    ],
)
def test_the_check_catches_each_import_form(source: str) -> None:
    assert forbidden_imports(source), source


@pytest.mark.parametrize(
    "source",
    [
        "from clinic import inputs",
        "import clinic.smsrux",
        "from emulators.smsru import codes",
        '"""Written apart from clinic.smsru.webhook on purpose."""',
        "from . import mango",
    ],
)
def test_the_check_lets_other_imports_through(source: str) -> None:
    assert forbidden_imports(source) == []


def test_importing_every_emulator_module_loads_neither_client() -> None:
    """The run-time counterpart: catches an import the source check could not see (a
    generic clinic module that itself pulls in a client, say)."""
    script = (
        "import pkgutil, sys, emulators\n"
        "for info in pkgutil.walk_packages(emulators.__path__, 'emulators.'):\n"
        "    __import__(info.name)\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('emulators.'))))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded, bad = result.stdout.splitlines()
    expected = {
        ".".join(("emulators", *p.relative_to(EMULATORS).with_suffix("").parts)).removesuffix(".__init__")
        for p in _emulator_sources()
    } - {"emulators"}
    assert set(loaded.split(",")) == expected  # every module was really imported
    assert bad == ""
