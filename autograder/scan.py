"""Static checks of the learner's code (read with `ast`, never run in the grader).

They find what deserves a human look: use of course_lib's reference implementation, paths to
solution or grading files, and tampering with libraries, the interpreter or IPython. The
sandbox makes these attempts useless; the checks make them visible, also when obfuscation
hides them from the audit hook. A finding never costs points by itself (a docstring, a
self-check or dead code can name anything): points are withheld only for what the sandbox
saw happen at run time (autograder.grade).
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from functools import lru_cache

REFERENCE, FILES, TAMPER, IPYTHON, EXIT = "reference", "files", "tamper", "ipython", "exit"
PROCESS, MENTION = "process", "mention"  # MENTION: a reference module named in a string only
_GUARDED_ROOTS = {"numpy", "torch", "course_lib", "builtins", "sys", "IPython", "operator"}
_GUARDED_ROOTS |= {"math", "unittest", "os", "signal", "atexit", "traceback", "ipykernel"}
_FILE_HINT = re.compile(
    r"solutions?/|/source/|gradebook|submitted/|autograded/|feedback/|\.ipynb\b|nbgrader",
    re.IGNORECASE,
)
_EXITS = {"exit", "quit", "sys.exit", "os._exit", "os.kill", "os.abort", "os.killpg"}
_PROCESSES = {"os.fork", "os.forkpty", "os.system", "os.popen", "os.execv", "os.execve"}
_PROCESS_MODULES = ("subprocess.", "multiprocessing.", "pty.", "signal.")


@dataclass(frozen=True)
class Finding:
    """Something in cell `cell` worth flagging; `defines` are the functions the cell defines."""

    cell: str
    kind: str
    detail: str
    defines: frozenset[str]


def scan(script: list[dict], hidden: dict[int, str], trusted: set[str]) -> list[Finding]:
    """Findings in the cells of `script` whose id is not in `trusted` (the set-up cells)."""
    aliases: dict[str, str] = {}
    findings: list[Finding] = []
    for cell in script:
        try:
            tree = ast.parse(cell["source"])
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        if cell["id"] in trusted:
            _collect_aliases(tree, aliases)
            continue
        defines = frozenset(
            n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
        seen: set[tuple[str, str]] = set()
        for kind, detail in _visit(tree, aliases, hidden):
            if (kind, detail) not in seen:
                seen.add((kind, detail))
                findings.append(Finding(cell["id"], kind, detail, defines))
    return findings


def _visit(tree: ast.AST, aliases: dict[str, str], hidden: dict[int, str]):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            _collect_aliases(node, aliases)
            for dotted in _imported(node):
                name = _hidden_name(dotted, hidden)
                if name:
                    yield REFERENCE, f"uses {name}"
        elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Del):
            dotted = _dotted(node, aliases)
            name = _hidden_name(dotted, hidden) if dotted else None
            if name:
                yield REFERENCE, f"uses {name}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield from _string_findings(node.value, hidden)
        elif isinstance(node, ast.Name) and node.id in ("get_ipython", "__builtins__"):
            yield (IPYTHON if node.id == "get_ipython" else TAMPER), f"uses {node.id}"
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                yield from _tampering(target, aliases)
        if isinstance(node, ast.Call):
            yield from _call_findings(node, aliases)


def _call_findings(node: ast.Call, aliases: dict[str, str]):
    func = _dotted(node.func, aliases) if isinstance(node.func, (ast.Name, ast.Attribute)) else ""
    if func in _EXITS:
        yield EXIT, f"calls {func}()"
    elif func in _PROCESSES or func.startswith(_PROCESS_MODULES):
        yield PROCESS, f"calls {func}()"
    if func in ("setattr", "delattr") and node.args:
        root = _dotted(node.args[0], aliases) if isinstance(node.args[0], ast.Name) else ""
        if root.split(".")[0] in _GUARDED_ROOTS:
            yield TAMPER, f"calls {func}() on {root}"


def _tampering(target: ast.AST, aliases: dict[str, str]):
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _tampering(element, aliases)
    elif isinstance(target, ast.Attribute):
        dotted = _dotted(target, aliases)
        if dotted and dotted.split(".")[0] in _GUARDED_ROOTS and "." in dotted:
            yield TAMPER, f"replaces {dotted}"


def _string_findings(text: str, hidden: dict[int, str]):
    for name in set(hidden.values()):
        module = name if name.count(".") >= 2 else ""
        if module and (module in text or module.replace(".", "/") in text):
            yield MENTION, f"mentions {module}"
    match = _FILE_HINT.search(text)
    if match:
        yield FILES, f"mentions the path {text[:80]!r}"


def _collect_aliases(tree: ast.AST, aliases: dict[str, str]) -> None:
    nodes = [tree] if isinstance(tree, (ast.Import, ast.ImportFrom)) else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    root = a.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not node.module or node.level:
        return []
    return [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str:
    """`a.b.c` with the root replaced by what it was imported as; "" if not a plain chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    root = aliases.get(node.id, node.id)
    return ".".join([root, *reversed(parts)])


def _hidden_name(dotted: str, hidden: dict[int, str]) -> str | None:
    if not dotted.startswith("course_lib"):
        return None
    for name in set(hidden.values()):
        if dotted == name or dotted.startswith(name + "."):
            return name
    obj = _resolve(dotted)
    return hidden.get(id(obj)) if obj is not None else None


@lru_cache(maxsize=1024)
def _resolve(dotted: str):
    """The course_lib object a dotted name refers to (trusted package, imports only)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except Exception:
            continue
        try:
            for attr in parts[n:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None
