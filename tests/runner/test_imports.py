"""runner/ has no import cycle, counting imports inside functions too (a lazy import that
closes a cycle is still one: the modules cannot be understood, or moved, one at a time)."""
from __future__ import annotations

import ast
import unittest
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[2] / "runner"


def module_name(path: Path) -> str:
    parts = path.relative_to(RUNNER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The runner modules `path` imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:       # `from runner.lab import build` names a module
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m in known}


class NoCycles(unittest.TestCase):
    def test_no_import_cycle(self) -> None:
        files = {module_name(p): p for p in RUNNER.rglob("*.py")}
        graph = {m: imports(p, set(files)) - {m} for m, p in files.items()}
        state: dict[str, int] = {}     # 1 on the current path, 2 done

        def visit(m: str, path: list[str]) -> None:
            state[m] = 1
            for d in sorted(graph[m]):
                if state.get(d) == 1:
                    cycle = path[path.index(d):] + [m, d] if d in path else [m, d]
                    self.fail("import cycle: " + " -> ".join(cycle))
                if d not in state:
                    visit(d, path + [m])
            state[m] = 2

        for m in sorted(graph):
            if m not in state:
                visit(m, [])


if __name__ == "__main__":
    unittest.main()
