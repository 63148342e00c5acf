#!/usr/bin/env python3
"""Repository rules `make lint` enforces beyond rustfmt, clippy and the template checks.

  (a) the repository stands alone: no tracked file outside `.ci/` refers to a path above the repository root, either
      relatively (a run of `../` longer than the depth of the file's crate, or of its folder outside a crate: paths
      in code are resolved from the crate root as often as from the file) or absolutely (a path under the folder
      that holds the checkout);
  (b) the functions' configuration is read in one place: `std::env::var` appears in `shared/src` only in
      `shared/src/config.rs`, so what a function reads is what `Config::load` reads, which the tests hold against
      the environment `infra/template.yaml` gives each function.

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


def main() -> int:
    problems: list[str] = []
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
