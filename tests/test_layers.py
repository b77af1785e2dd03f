"""The layering rules of DESIGN.md, read from the source files (imports parsed with `ast`).

Every import counts, also those inside functions (a lazy import still ties the two modules);
imports under `if TYPE_CHECKING:` do not. Importing `a.b.c` is an edge to `a.b.c` only, not to
the packages `a` and `a.b` that Python imports on the way.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pafpose"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """Import nodes guarded by `if TYPE_CHECKING:`."""
    guarded: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                guarded.update(ast.walk(stmt))
    return guarded


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is a pafpose module."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


@cache
def import_graph() -> dict[str, set[str]]:
    """pafpose module -> the pafpose modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        skip = _type_checking_only(tree)
        edges: set[str] = set()
        for node in ast.walk(tree):
            if node in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            edges.update(t for t in (_known(t, modules) for t in targets) if t and t != name)
        graph[name] = edges
    return graph


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _violations(lower: tuple[str, ...], higher: tuple[str, ...]) -> list[str]:
    graph = import_graph()
    return sorted(f"{m} imports {t}" for m, targets in graph.items() if _under(m, lower)
                  for t in targets if _under(t, higher))


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


P = "pafpose."
#: What the models (registry, fetch, converters, quantization) must never import.
ABOVE_MODELS = tuple(P + m for m in (
    "estimator", "decode", "scales", "preprocess", "multiscale", "video", "serve", "cli",
    "predict", "evaluate", "bench", "tfpose", "presets", "draw", "track", "window", "train"))
#: The one part of `train` the models may import: pafpose's own definition of the Lightweight
#: OpenPose network, whose checkpoints models/lightweight.py converts. It is a leaf (torch and
#: the skeleton's channel counts only), so the models gain no path to the training code.
MODELS_MAY_IMPORT = (P + "train.networks.lightweight",)
#: What the decoder must never import.
ABOVE_DECODE = tuple(P + m for m in ("runtime", "estimator", "models"))


def test_the_graph_sees_the_whole_package() -> None:
    graph = import_graph()
    assert "pafpose.models.quantize" in graph and "pafpose.estimator" in graph
    assert "pafpose.models.tfgraph" in graph["pafpose.models.resolve"]


def test_models_never_import_the_decoder_or_the_estimator() -> None:
    allowed = {f"{m} imports {t}" for m in import_graph() for t in MODELS_MAY_IMPORT}
    assert [v for v in _violations((P + "models",), ABOVE_MODELS) if v not in allowed] == []


@pytest.mark.parametrize("module", MODELS_MAY_IMPORT)
def test_what_the_models_may_import_from_train_is_a_leaf(module: str) -> None:
    base = tuple(P + m for m in ("files", "errors", "defaults", "jit", "skeleton"))
    assert sorted(t for t in import_graph()[module] if not _under(t, base)) == []


def test_the_decoder_never_imports_the_runtime_estimator_or_models() -> None:
    assert _violations((P + "decode",), ABOVE_DECODE) == []


def test_no_import_cycles() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("module", ["files", "errors", "defaults", "jit"])
def test_the_base_modules_import_no_other_pafpose_module_but_each_other(module: str) -> None:
    base = tuple(P + m for m in ("files", "errors", "defaults", "jit"))
    graph = import_graph()
    assert sorted(t for t in graph[P + module] if not _under(t, base)) == []
