#!/usr/bin/env python3
"""Repository rules `make lint` enforces beyond rustfmt, clippy and the template checks.

  (a) the repository stands alone: no tracked file outside `.ci/` refers to a path above the repository root, either
      relatively (a run of `../` longer than the depth of the file's crate, or of its folder outside a crate: paths
      in code are resolved from the crate root as often as from the file) or absolutely (a path under the folder
      that holds the checkout);
  (b) the functions' configuration is read in one place: `std::env::var` appears in `shared/src` only in
      `shared/src/config.rs`, so what a function reads is what `Config::load` reads, which the tests hold against
      the environment `infra/template.yaml` gives each function;
  (c) the library's modules import each other without a circle: from each file of `shared/src` (a module; `mod.rs`
      is its folder's), every `crate::…` and `super::…` path outside comments and `#[cfg(test)] mod tests` names a
      module, and the graph of those names has no cycle, so the modules stand in layers and no import runs from a
      lower one to a higher one (a module's own children excepted). A cycle is printed with its edges.

Usage: python3 tests/check_repo.py. Prints `repo: N files checked, 0 problems` or one line per problem (exit 1).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELATIVE = re.compile(r"(?:\.\./)+")
ENV_READ = re.compile(r"\benv::var(_os)?\s*\(")


def tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p and not p.startswith(".ci/")]


def depth(path: Path) -> int:
    """How many folders up a relative path in `path` may go: to its crate's root, or to its own folder."""
    for d in path.parents:
        if d != ROOT and (d / "Cargo.toml").exists():
            return len(d.relative_to(ROOT).parts)
    return len(path.parent.relative_to(ROOT).parts)


CRATE_PATH = re.compile(r"\bcrate::((?:\w+::)*\w+)")
SUPER_PATH = re.compile(r"\bsuper::((?:\w+::)*\w+)")
COMMENT = re.compile(r"//[^\n]*")
TESTS = re.compile(r"#\[cfg\(test\)\]\s*mod tests")


def import_cycles() -> list[list[str]]:
    """(c): the cycles of the module graph of shared/src, each as `a -> b` lines."""
    src = ROOT / "shared" / "src"
    mods: dict[str, str] = {}
    for path in src.rglob("*.rs"):
        name = str(path.relative_to(src))[:-3]
        name = name[: -len("/mod")] if name.endswith("/mod") else name
        if name != "lib":
            mods[name] = COMMENT.sub("", TESTS.split(path.read_text(encoding="utf-8"))[0])

    def resolve(path: str) -> str | None:
        parts = path.split("::")
        for i in range(len(parts), 0, -1):
            if "/".join(parts[:i]) in mods:
                return "/".join(parts[:i])
        return None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, text in mods.items():
        parent = "/".join(m.split("/")[:-1])
        targets = [resolve(p) for p in CRATE_PATH.findall(text)]
        targets += [resolve(f"{parent.replace('/', '::')}::{p}" if parent else p) for p in SUPER_PATH.findall(text)]
        edges[m] |= {t for t in targets if t and t != m and not m.startswith(t + "/")}
    # Tarjan's strongly connected components.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append([f"{a} -> {b}" for a in sorted(comp) for b in sorted(edges[a] & set(comp))])

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def main() -> int:
    problems: list[str] = []
    for cycle in import_cycles():
        problems.append("shared/src: modules import each other in a circle: " + ", ".join(cycle))
    files = tracked()
    outside = str(ROOT.parent).rstrip("/") + "/"
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        rel = path.relative_to(ROOT)
        for n, line in enumerate(text.splitlines(), 1):
            for m in RELATIVE.finditer(line):
                if m.group(0).count("../") > depth(path):
                    problems.append(f"{rel}:{n}: `{m.group(0)}` leads outside the repository")
            if outside in line and str(ROOT) not in line:
                problems.append(f"{rel}:{n}: names a path outside the repository ({outside}…)")
        if rel.parts[:2] == ("shared", "src") and rel.name != "config.rs" and path.suffix == ".rs":
            for n, line in enumerate(text.splitlines(), 1):
                if ENV_READ.search(line):
                    problems.append(
                        f"{rel}:{n}: reads the environment; read it in shared/src/config.rs (Config::load) instead"
                    )
    for p in problems:
        print(p)
    print(f"repo: {len(files)} files checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
