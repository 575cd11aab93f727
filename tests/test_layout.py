"""The package's import floors (shared/DESIGN.md): no cycle between folders, no upward import.

Imports point down: run -> restore -> tasks -> optimize -> components -> agents -> evaluation
-> env -> data -> market; ``launch/`` stands beside them (any floor may use it, it uses only the
leaf modules).
Every ``import`` counts, lazy ones inside functions included; only ``if TYPE_CHECKING:`` blocks
are skipped (annotations, never executed). Read with :mod:`ast`, nothing is imported.

Also: one MLflow handle. Only :mod:`cryptotrade.launch.tracking` imports MLflow (the listed
exceptions in ``MLFLOW_IMPORTERS`` say why), type-only imports included.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cryptotrade"

# Lower number = higher floor. Folders on one floor may import each other, but not in a cycle.
FLOORS: dict[str, float] = {
    "run": 0,
    "restore": 0.5,  # the config of a stored run (resume=, model=): used by the launcher only
    "tasks": 1,
    "optimize": 2,
    "components": 3,
    "config": 3.5,  # the schemas: read by components and above, names evaluation's settings
    "agents": 4,
    "evaluation": 5,
    "live": 5,  # the paper account and live observation, used by task=infer
    "env": 6,
    "data": 7,
    "market": 8,
    "launch": 8.5,  # beside the floors: everyone may use it; it uses only the leaves below
    "errors": 9,
    "io": 9,
    "timeframes": 9,
    "progress": 9,  # elapsed time and ETA of the progress log lines (a leaf)
    "__init__": 9,  # the package itself (ENV_ID, the numba cache folder)
}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside an ``if TYPE_CHECKING:`` block."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skipped |= {id(n) for n in ast.walk(child)}
    return skipped


def _imported(module: str, is_package: bool, tree: ast.AST) -> list[tuple[str, int]]:
    """``(imported module, line)`` of every runtime import in ``module``'s source."""
    skipped = _type_checking_nodes(tree)
    here = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _unit(module: str, root: Path) -> str | None:
    """The top-level folder or module of ``cryptotrade.<...>`` (``__init__`` for the package)."""
    parts = module.split(".")
    if parts[0] != root.name:
        return None
    if len(parts) == 1:
        return "__init__"
    first = parts[1]
    return first if (root / first).is_dir() or (root / f"{first}.py").is_file() else "__init__"


def package_imports(root: Path) -> dict[tuple[str, str], list[str]]:
    """``(from unit, to unit) -> ["module:line", ...]`` for every import between two units."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        is_package = path.name == "__init__.py"
        module = ".".join(rel.parts[:-1] if is_package else rel.parts)
        source = _unit(module, root)
        for target, line in _imported(module, is_package, ast.parse(path.read_text())):
            dest = _unit(target, root)
            if dest is not None and dest != source and source is not None:
                edges[(source, dest)].append(f"{module}:{line}")
    return edges


def layout_problems(root: Path, floors: dict[str, float]) -> list[str]:
    """Every upward import, unplaced unit and cycle between the units of ``root``."""
    edges = package_imports(root)
    problems = []
    for (src, dst), where in sorted(edges.items()):
        for unit in (src, dst):
            if unit not in floors:
                problems.append(f"{unit} has no floor: add it to FLOORS in tests/test_layout.py")
        if src in floors and dst in floors and floors[dst] < floors[src]:
            problems.append(f"upward import {src} -> {dst} at {', '.join(sorted(set(where)))}")
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in edges:
        graph[src].add(dst)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                problems.append("import cycle " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return sorted(set(problems))


def test_cryptotrade_imports_point_down_the_floors_without_cycles() -> None:
    assert layout_problems(PACKAGE, FLOORS) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "cryptotrade"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (  # a lazy upward import inside a function is still upward
            {
                "env/__init__.py": "def f():\n    from cryptotrade.tasks import TASKS\n",
                "tasks/__init__.py": "TASKS = {}\n",
            },
            "upward import env -> tasks at cryptotrade.env:2",
        ),
        (  # relative imports resolve against the package
            {"data/x.py": "from ..optimize import objective\n", "optimize/objective.py": ""},
            "upward import data -> optimize at cryptotrade.data.x:1",
        ),
        (
            {"agents/a.py": "import cryptotrade.evaluation.e\n", "evaluation/e.py": ""},
            None,
        ),
        (
            {
                "agents/a.py": "from cryptotrade import live\n",
                "live/__init__.py": "from cryptotrade.agents import a\n",
            },
            "import cycle agents -> live -> agents",
        ),
        (
            {"brand_new.py": "from cryptotrade import errors\n", "errors.py": ""},
            "brand_new has no floor: add it to FLOORS in tests/test_layout.py",
        ),
    ],
)
def test_the_check_catches_planted_problems(tmp_path, files, expected) -> None:
    floors = {**FLOORS, "agents": 4, "live": 4}  # one floor: only a cycle is wrong
    problems = layout_problems(_tree(tmp_path, files), floors)
    assert problems == ([expected] if expected else [])


def test_type_checking_imports_are_not_runtime_dependencies(tmp_path) -> None:
    text = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cryptotrade import run\n"
    assert layout_problems(_tree(tmp_path, {"market/m.py": text}), FLOORS) == []


# ---- one MLflow handle ---------------------------------------------------------------------------
# The modules that may import MLflow, and what. Everything else reaches MLflow through
# cryptotrade.launch.tracking (runs, logging, run lookups; a client for liveness and the store).
MLFLOW_IMPORTERS: dict[str, set[str] | None] = {
    "cryptotrade.launch.tracking": None,  # the handle: anything of MLflow
    # The pyfunc wrapper subclasses MLflow's PythonModel when the class is defined, and logged
    # models name it by this import path, so it stays here; it imports nothing else of MLflow.
    "cryptotrade.evaluation.policy_model": {"mlflow.pyfunc.PythonModel"},
}


def _mlflow_imports(tree: ast.AST) -> list[tuple[str, int]]:
    """``(name, line)`` of every import of MLflow, ``TYPE_CHECKING`` blocks included (a type
    from MLflow is re-exported by the handle)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(n, node.lineno) for n in names if n == "mlflow" or n.startswith("mlflow.")]
    return found


def mlflow_problems(root: Path, allowed: dict[str, set[str] | None]) -> list[str]:
    """Every import of MLflow in ``root`` outside ``allowed`` (module -> names, ``None``: any)."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = rel.parts[:-1] if path.name == "__init__.py" else rel.parts
        module = ".".join(parts)
        names = allowed.get(module, set())
        for name, line in _mlflow_imports(ast.parse(path.read_text())):
            if names is not None and name not in names:
                problems.append(
                    f"{module}:{line} imports {name}: use cryptotrade.launch.tracking (the one "
                    "MLflow handle) or list the module in MLFLOW_IMPORTERS with the reason"
                )
    return problems


def test_only_the_tracking_module_imports_mlflow() -> None:
    assert mlflow_problems(PACKAGE, MLFLOW_IMPORTERS) == []


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "optimize/x.py",
            "def f():\n    import mlflow\n",
            "cryptotrade.optimize.x:2 imports mlflow",
        ),
        (
            "optimize/x.py",
            "from mlflow.entities import Param\n",
            "cryptotrade.optimize.x:1 imports mlflow.entities.Param",
        ),
        (  # a type-only import counts too: types come from the handle
            "launch/liveness.py",
            "if TYPE_CHECKING:\n    from mlflow import MlflowClient\n",
            "cryptotrade.launch.liveness:2 imports mlflow.MlflowClient",
        ),
        (  # the listed exception may import only what it is listed with
            "evaluation/policy_model.py",
            "from mlflow.pyfunc import PythonModel, log_model\n",
            "cryptotrade.evaluation.policy_model:1 imports mlflow.pyfunc.log_model",
        ),
        ("optimize/x.py", "import mlflowish\nfrom cryptotrade.launch import tracking\n", None),
        ("launch/tracking.py", "import mlflow\nfrom mlflow.entities import Run\n", None),
    ],
)
def test_the_mlflow_check_catches_planted_imports(tmp_path, name, text, expected) -> None:
    problems = mlflow_problems(_tree(tmp_path, {name: text}), MLFLOW_IMPORTERS)
    assert [p.split(": use ")[0] for p in problems] == ([expected] if expected else [])


# ---- no DictConfig below the launcher ------------------------------------------------------------
# Tasks and searches get typed settings and one ConfigDeriver (cryptotrade.optimize.derive), the
# only module under tasks/ and optimize/ that holds a config: it derives candidate, winner, stage
# and seed configs and builds their components.
CONFIG_FREE = ("tasks", "optimize")
CONFIG_OWNER = "cryptotrade.optimize.derive"


def _annotations(tree: ast.AST) -> list[tuple[str, ast.expr]]:
    """``(what, annotation)`` of every annotated parameter, return, attribute and variable."""
    found: list[tuple[str, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is not None and arg.annotation is not None:
                    found.append((f"{node.name}({arg.arg})", arg.annotation))
            if node.returns is not None:
                found.append((f"{node.name} returns", node.returns))
        elif isinstance(node, ast.AnnAssign):
            found.append((ast.unparse(node.target), node.annotation))
    return found


def _names_dictconfig(annotation: ast.expr) -> bool:
    """The annotation mentions ``DictConfig`` (a name, ``omegaconf.DictConfig`` or a string)."""
    for node in ast.walk(annotation):
        name = getattr(node, "id", None) or getattr(node, "attr", None)
        text = node.value if isinstance(node, ast.Constant) else None
        if name == "DictConfig" or (isinstance(text, str) and re.search(r"\bDictConfig\b", text)):
            return True
    return False


def dictconfig_problems(root: Path, folders: tuple[str, ...], owner: str) -> list[str]:
    """Every import of ``DictConfig`` and every parameter, return value, attribute or variable
    annotated with it in a module of ``folders`` other than ``owner``."""
    problems = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root.parent).with_suffix("")
            parts = rel.parts[:-1] if path.name == "__init__.py" else rel.parts
            module = ".".join(parts)
            if module == owner:
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):  # a type alias or an isinstance needs the import too
                if isinstance(node, ast.ImportFrom) and any(
                    alias.name == "DictConfig" for alias in node.names
                ):
                    problems.append(
                        f"{module}:{node.lineno} import is a DictConfig: take typed settings "
                        f"or the {owner}.ConfigDeriver"
                    )
            for what, annotation in _annotations(tree):
                if _names_dictconfig(annotation):
                    problems.append(
                        f"{module}:{annotation.lineno} {what} is a DictConfig: take typed "
                        f"settings or the {owner}.ConfigDeriver"
                    )
    return problems


def test_tasks_and_searches_take_no_dictconfig() -> None:
    assert dictconfig_problems(PACKAGE, CONFIG_FREE, CONFIG_OWNER) == []


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("tasks/t.py", "def f(cfg: DictConfig) -> None: ...\n", "cryptotrade.tasks.t:1 f(cfg)"),
        (
            "optimize/o.py",
            "def f(x: int) -> omegaconf.DictConfig: ...\n",
            "cryptotrade.optimize.o:1 f returns",
        ),
        (  # a dataclass field, and a string annotation (from __future__ import annotations)
            "tasks/context.py",
            "class C:\n    cfg: 'DictConfig | None'\n",
            "cryptotrade.tasks.context:2 cfg",
        ),
        (
            "optimize/o.py",
            "def f(*, cfg: Mapping[str, DictConfig]): ...\n",
            "cryptotrade.optimize.o:1 f(cfg)",
        ),
        (  # a type alias (or an isinstance) needs the name: its import is refused too
            "tasks/__init__.py",
            "from omegaconf import DictConfig\nPreflight = Callable[[DictConfig], Any]\n",
            "cryptotrade.tasks:1 import",
        ),
        (
            "optimize/derive.py",
            "from omegaconf import DictConfig\ndef f(cfg: DictConfig): ...\n",
            None,
        ),
        ("components.py", "def build(cfg: DictConfig): ...\n", None),  # the seam itself
        ("tasks/t.py", "def f(cfg: DictConfigLike, n: 'DictConfigs') -> None: ...\n", None),
    ],
)
def test_the_dictconfig_check_catches_planted_annotations(tmp_path, name, text, expected) -> None:
    root = _tree(tmp_path, {"tasks/__init__.py": "", "optimize/__init__.py": "", name: text})
    problems = dictconfig_problems(root, CONFIG_FREE, CONFIG_OWNER)
    assert [p.split(" is a DictConfig")[0] for p in problems] == ([expected] if expected else [])


KERNEL_DECORATORS = {"kernel", "inlined_kernel", "njit", "jit"}


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def test_the_numba_cache_key_hashes_every_module_that_defines_a_kernel():
    """A kernel module left out of the key would keep stale code compiled into its callers
    (numba checks only a kernel's own file); a module that only calls kernels stays out."""
    from cryptotrade import _compiles_kernels

    defining = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            decorators = getattr(node, "decorator_list", [])
            if any(_decorator_name(d) in KERNEL_DECORATORS for d in decorators):
                defining.add(path.relative_to(PACKAGE).as_posix())
    keyed = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if _compiles_kernels(p.read_bytes())
    }
    assert {"env/reward.py", "env/core.py", "evaluation/oracle_nb.py"} <= defining
    assert defining <= keyed, sorted(defining - keyed)
    assert "optimize/warm.py" not in keyed  # it mentions numba, compiles nothing
