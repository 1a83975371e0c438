"""The `talking_points` modules each DVC stage runs, found by walking the imports with `ast` (imports inside
functions count: they run when the stage does). Used by tests/test_dvc_deps.py; run it to print each stage's
exact code deps: `python tests/stage_deps.py`; `python tests/stage_deps.py --fix` rewrites dvc.yaml's code deps to
them."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "talking_points"


def module_file(name: str) -> Path | None:
    """The file of module `name` (a package's __init__.py), or None if it is not a talking_points module."""
    if not (name == PACKAGE or name.startswith(PACKAGE + ".")):
        return None
    base = ROOT / Path(*name.split("."))
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    return None


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@cache
def direct_imports(path: Path) -> frozenset[str]:
    """Modules `path` imports (absolute names; a `from pkg import name` counts `pkg.name` when it is a
    module, else `pkg`), and the packages above each (Python runs their __init__ first)."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                mod = f"{pkg}.{node.module}" if node.module else pkg
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names if module_file(f"{mod}.{a.name}"))
    out = set()
    for n in names:
        if module_file(n):
            out.add(n)
            out.update(p for p in _parents(n) if module_file(p))
    return frozenset(out)


def trivial(path: Path) -> bool:
    """A package __init__ that imports nothing (a docstring, `__version__`): it cannot change what runs."""
    if path.name != "__init__.py":
        return False
    tree = ast.parse((ROOT / path).read_text())
    return not any(isinstance(n, (ast.Import, ast.ImportFrom)) and getattr(n, "module", "") != "__future__"
                   for n in ast.walk(tree))


def closure(module: str) -> set[Path]:
    """Files of `module` and of everything it imports, transitively (talking_points only; trivial package
    __init__ files left out)."""
    seen: set[str] = set()
    todo = [module, *(p for p in _parents(module) if module_file(p))]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(direct_imports(module_file(m)) - seen)
    files = {module_file(m).relative_to(ROOT) for m in seen}
    return {f for f in files if not trivial(f)}


def stage_modules() -> dict[str, str]:
    """`tp` sub-command -> the module of its function (from the CLI's registrations)."""
    from talking_points.cli import COMMANDS

    return {name: f"talking_points.stages.{c.module}" for name, c in COMMANDS.items()}


def covered(deps: list[str]) -> set[Path]:
    """The .py files under talking_points that a stage's deps (files or folders) cover."""
    out = set()
    for d in deps:
        p = ROOT / d
        if not d.startswith(PACKAGE):
            continue
        if p.is_dir():
            out.update(f.relative_to(ROOT) for f in p.rglob("*.py"))
        elif p.suffix == ".py":
            out.add(p.relative_to(ROOT))
    return {f for f in out if not trivial(f)}


def minimal_deps(files: set[Path]) -> list[str]:
    """`files` as dvc.yaml deps: a folder where every .py file under it is needed, else the files."""
    chosen: list[str] = []
    folders = sorted({f.parent for f in files} | {p for f in files for p in f.parents if p != Path(".")},
                     key=lambda p: len(p.parts))
    rest = set(files)
    for folder in folders:
        inside = {f.relative_to(ROOT) for f in (ROOT / folder).rglob("*.py") if not trivial(f.relative_to(ROOT))}
        if inside and inside <= files and inside & rest and folder != Path(PACKAGE):
            chosen.append(str(folder))
            rest -= inside
    return sorted(chosen + [str(f) for f in rest])


def fix_dvc_yaml(path: Path = ROOT / "dvc.yaml") -> list[str]:
    """Rewrite the code deps (`- talking_points/...` lines) of every stage of `path` to its exact list, in place;
    other deps, comments and formatting stay. Returns the names of the stages that changed."""
    import re

    lines = path.read_text().splitlines(keepends=True)
    out: list[str] = []
    changed: list[str] = []
    stage = command = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := re.match(r"^  ([a-z0-9-]+):\s*(#.*)?$", line):
            stage, command = m.group(1), None
        if command is None and (m := re.search(r"(?:\bcmd:\s*|^\s+)(?:>-\s*)?tp ([a-z0-9-]+)", line)):
            command = m.group(1)  # `cmd: tp x`, or the first line of a folded `cmd: >-`
        if command and re.match(r"^\s+- talking_points/", line):
            indent = line[: len(line) - len(line.lstrip())]
            old = []
            while i < len(lines) and re.match(r"^\s+- talking_points/", lines[i]):
                old.append(lines[i])
                i += 1
            new = [f"{indent}- {d}\n" for d in minimal_deps(closure(stage_modules()[command]))]
            if new != old:
                changed.append(stage)
            out.extend(new)
            continue
        out.append(line)
        i += 1
    path.write_text("".join(out))
    return changed


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--fix"]:
        print("rewrote the code deps of:", ", ".join(fix_dvc_yaml()) or "nothing")
    else:
        for cmd, module in sorted(stage_modules().items()):
            print(cmd, module)
            for d in minimal_deps(closure(module)):
                print("   -", d)
