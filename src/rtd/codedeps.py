"""A stage's code dependencies: the import closure of its entry module inside ``src/``, found by an ``ast`` walk.

Imports inside functions count (the stages import lazily), and so does every package ``__init__.py`` on the way,
so a change to any file that a stage can execute marks it stale. Imports of other packages are ignored.
"""
from __future__ import annotations

import ast
import hashlib
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


FINGERPRINTS = "reports/code"   # the `code` stage's outputs: one file per entry module (stages/code.py)


def fingerprint_modules(src: Path = SRC) -> list[str]:
    """The modules a stage can name in its deps: each stage entry point (``rtd.stages.<name>``) and each track
    package (``rtd.tracks.<name>``, which the core imports by name at run time), found in the tree."""
    stages = [f"rtd.stages.{p.stem}" for p in sorted((src / "rtd" / "stages").glob("*.py"))
              if p.stem not in ("__init__", "common", "code")]
    tracks = [f"rtd.tracks.{p.parent.name}" for p in sorted((src / "rtd" / "tracks").glob("*/__init__.py"))]
    return stages + tracks


def fingerprint_path(module: str) -> str:
    """Where the ``code`` stage writes ``module``'s fingerprint (a stage that runs it depends on this file)."""
    return f"{FINGERPRINTS}/{module}.txt"


def fingerprint(module: str, src: Path = SRC) -> str:
    """The md5 of every file in ``module``'s import closure, one line each: it changes exactly when a file that
    the module can execute changes, so a stage that depends on it reruns then and only then."""
    files = import_closure(module, src)   # paths from the repository root: src/...
    lines = [f"{hashlib.md5((src / Path(f).relative_to('src')).read_bytes()).hexdigest()}  {f}" for f in files]
    return f"# the files that `{module}` can execute (its import closure), with their md5\n" + "\n".join(lines) + "\n"


def code_files(deps: list[str]) -> list[str]:
    """The files a stage's ``deps`` make it depend on through their fingerprints: the union of those modules'
    import closures, sorted."""
    prefix = f"{FINGERPRINTS}/"
    return sorted({f for d in deps if d.startswith(prefix) for f in import_closure(d[len(prefix):-len(".txt")])})
