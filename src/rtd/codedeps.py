"""A stage's code dependencies: the import closure of its entry module inside ``src/``, found by an ``ast`` walk.

Imports inside functions count (the stages import lazily), and so does every package ``__init__.py`` on the way,
so a change to any file that a stage can execute marks it stale. Imports of other packages are ignored.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]   # the `src/` folder this package was imported from


def module_file(module: str, src: Path = SRC) -> Path | None:
    """The source file of a dotted module under ``src`` (``pkg/__init__.py`` for a package), or None."""
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Dotted names a file imports (absolute; relative imports resolved against ``module``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)   # `from . import x` may name a module
    return found


@lru_cache(maxsize=None)
def _closure(module: str, src: str) -> tuple[str, ...]:
    root = Path(src)
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name, root)
        if path is None:
            continue
        seen[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]   # parent packages run their __init__
        todo += sorted(_imports(path, name))
    return tuple(sorted(f"src/{p.relative_to(root).as_posix()}" for p in seen.values()))


def import_closure(module: str, src: Path = SRC) -> list[str]:
    """Every file under ``src`` that importing ``module`` (and calling its functions) can execute, sorted, as
    paths from the repository root (``src/rtd/...``)."""
    if module_file(module, src) is None:
        raise FileNotFoundError(f"no module {module!r} under {src}/")
    return list(_closure(module, str(src)))
