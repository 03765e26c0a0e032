"""The package's layering: every import points down the pipeline, so there is no import cycle.

Counts every import, at module level or inside a function, as the design asks."""

import ast
from pathlib import Path

import digitnet

SRC = Path(digitnet.__file__).parent
ORDER = ["settings", "errors", "fsutil", "cpuinfo", "imageprep", "data", "recipes", "tensorfile", "cpu_linear", "model", "losses",
         "metrics", "distributed", "training", "checkpoint", "linechart", "report", "runs", "predict", "inside", "inspection",
         "comparison", "tensorboard_log", "export", "serve", "cli", "__main__"]


def _imports(path: Path) -> set[str]:
    """The top-level digitnet modules a file imports (digitnet.x.y -> x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("digitnet"):
            parts = node.module.split(".")
            found.add(parts[1] if len(parts) > 1 else None)
            if len(parts) == 1:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("digitnet."))
    return found - {None}


def test_every_module_has_a_place_in_the_order():
    modules = {p.stem if p.parent == SRC else p.relative_to(SRC).parts[0] for p in SRC.rglob("*.py")}
    assert modules - {"__init__"} == set(ORDER)


def test_imports_point_down_the_pipeline():
    upward = []
    for path in SRC.rglob("*.py"):
        if path == SRC / "__init__.py":
            continue  # the package's lazy public names
        own = path.stem if path.parent == SRC else path.relative_to(SRC).parts[0]
        for target in _imports(path) & set(ORDER):
            if target != own and ORDER.index(target) > ORDER.index(own):
                upward.append(f"{path.relative_to(SRC)} imports {target}")
    assert not upward, upward
