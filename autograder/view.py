"""The copy of course_lib that learner code sees while grading: references replaced by tripwires.

An assignment's spec names its hidden references: whole modules (e.g.
`course_lib.embeddings.similarity`) or single attributes (e.g. a private helper that computes
the same thing). In the copy, each becomes a function that raises "not available while
grading" and raises the audit event `autograder.reference`, which the harness reports; the
real code is not in the sandbox at all, so no import trick can reach it.
"""

from __future__ import annotations

import ast
import compileall
import importlib
import importlib.util
import os
import shutil
from collections import defaultdict
from pathlib import Path

_TRIPWIRE = '''
def {fn}(name):
    """A stand-in that reports and refuses every call to `name` while grading."""

    def unavailable(*args, **kwargs):
        __import__("sys").audit("autograder.reference", name)
        raise RuntimeError(
            f"{{name}} is course_lib's reference implementation; it is not available "
            "while grading, so use your own code"
        )

    unavailable.__name__ = unavailable.__qualname__ = name.rsplit(".", 1)[-1]
    return unavailable
'''


def course_lib_dir() -> Path:
    """The folder of the course_lib package the grader itself uses."""
    spec = importlib.util.find_spec("course_lib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("course_lib is not importable")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def build_view(dest: Path, hidden: tuple[str, ...]) -> Path:
    """Write the learner's view of course_lib to `dest/course_lib`; returns that folder."""
    view = dest / "course_lib"
    shutil.copytree(course_lib_dir(), view, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    appended: dict[Path, list[str]] = defaultdict(list)
    for name in hidden:
        if _is_module(name):
            _module_path(view, name).write_text(_stub_module(name))
        else:
            module, attr = name.rsplit(".", 1)
            appended[_module_path(view, module)].append(
                f'{attr} = _autograder_tripwire("{name}")\n'
            )
    for path, lines in appended.items():
        text = path.read_text() + "\n" + _TRIPWIRE.format(fn="_autograder_tripwire") + "\n"
        path.write_text(text + "".join(lines))
    compileall.compile_dir(view, quiet=2, force=True)
    for root, _, files in os.walk(dest):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return view


def hidden_objects(hidden: tuple[str, ...]) -> dict[int, str]:
    """id() of every real object a hidden name stands for -> its dotted name (static scan)."""
    found: dict[int, str] = {}
    for name in hidden:
        if _is_module(name):
            module = importlib.import_module(name)
            found[id(module)] = name
            for attr, value in vars(module).items():
                if callable(value) and getattr(value, "__module__", None) == name:
                    found[id(value)] = f"{name}.{attr}"
        else:
            module, attr = name.rsplit(".", 1)
            found[id(getattr(importlib.import_module(module), attr))] = name
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _module_path(view: Path, module: str) -> Path:
    parts = module.split(".")[1:]
    package = view.joinpath(*parts, "__init__.py")
    return package if package.exists() else view.joinpath(*parts[:-1], parts[-1] + ".py")


def _stub_module(name: str) -> str:
    """Tripwires for the module's functions and classes; its plain constants are kept."""
    module = importlib.import_module(name)
    lines = [
        f'"""Stand-in for {name} while grading: the reference implementation is not here."""',
        _TRIPWIRE.format(fn="_tripwire"),
    ]
    for attr, value in sorted(vars(module).items()):
        if callable(value) and getattr(value, "__module__", None) == name:
            lines.append(f'{attr} = _tripwire("{name}.{attr}")')
        elif not attr.startswith("__") and _is_literal(value):
            lines.append(f"{attr} = {value!r}")
    return "\n".join(lines) + "\n"


def _is_literal(value) -> bool:
    if isinstance(value, (bool, int, float, str, type(None))):
        return True
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
