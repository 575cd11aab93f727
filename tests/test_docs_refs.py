"""Every Sphinx cross-reference in cryptotrade's source resolves to a real module, class,
function or attribute (:func:`x`, :class:`x`, :mod:`x`, :meth:`x`, :data:`x`, :attr:`x`).

A moved or renamed object leaves its old name in prose; this reads the package with :mod:`ast`
(nothing is imported) and names every reference that no longer points anywhere. Qualified names
(``cryptotrade.a.b``) resolve from the package root, following re-exports; bare names
(``evaluate_split``, ``RunContext.prepared``) resolve in the module that mentions them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cryptotrade"
ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):`~?\.?([A-Za-z_][\w.]*)`")


@dataclass
class Module:
    """What one module binds at its top level, its classes' members, and its imports."""

    names: set[str] = field(default_factory=set)
    classes: dict[str, set[str]] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # bound name -> dotted target


def _index(root: Path) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        is_package = path.name == "__init__.py"
        name = ".".join(rel.parts[:-1] if is_package else rel.parts)
        here = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        mod = Module()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                mod.names.add(node.name)
            elif isinstance(node, ast.ClassDef):
                mod.names.add(node.name)
                mod.classes[node.name] = _members(node)
            elif isinstance(node, ast.Assign):
                mod.names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                mod.names.add(node.target.id)
        for node in ast.walk(tree):  # imports anywhere: TYPE_CHECKING and function-local too
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    mod.imports[bound] = alias.name if alias.asname else bound
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                for alias in node.names:
                    mod.imports[alias.asname or alias.name] = f"{base}.{alias.name}"
        modules[name] = mod
    return modules


def _members(node: ast.ClassDef) -> set[str]:
    members = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            members.add(item.name)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            members.add(item.target.id)
        elif isinstance(item, ast.Assign):
            members |= {t.id for t in item.targets if isinstance(t, ast.Name)}
    for sub in ast.walk(node):  # attributes set in methods: self.names = ...
        target = isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Store)
        if target and isinstance(sub.value, ast.Name) and sub.value.id == "self":
            members.add(sub.attr)
    return members


def _resolve(ref: str, modules: dict[str, Module], depth: int = 0) -> bool:
    """Whether the dotted ``ref`` (from the package root) names something real."""
    parts = ref.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if module in modules:
            return _in_module(modules[module], parts[cut:], modules, depth)
    return False


def _in_module(mod: Module, rest: list[str], modules: dict[str, Module], depth: int) -> bool:
    if not rest:
        return True
    head, tail = rest[0], rest[1:]
    if head in mod.classes:
        return not tail or (len(tail) == 1 and tail[0] in mod.classes[head])
    if head in mod.names:
        return not tail
    if head in mod.imports:
        target = mod.imports[head]
        if not target.startswith(PACKAGE.name) or depth > 5:
            return True  # a third-party object re-exported here
        return _resolve(".".join([target, *tail]), modules, depth + 1)
    return False


def broken_references(root: Path) -> list[str]:
    """``path:line: ref`` of every cross-reference that does not resolve."""
    modules = _index(root)
    broken = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        is_package = path.name == "__init__.py"
        name = ".".join(rel.parts[:-1] if is_package else rel.parts)
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for ref in ROLE.findall(line):
                if ref.startswith(f"{root.name}."):
                    ok = _resolve(ref, modules)
                elif "." in ref and ref.split(".")[0] not in modules[name].names | set(
                    modules[name].imports
                ):
                    continue  # another package's object (stable_baselines3.PPO, ...)
                else:  # a bare name: this module's, or a member of one of its classes
                    mod = modules[name]
                    ok = _in_module(mod, ref.split("."), modules, 0) or any(
                        ref in members for members in mod.classes.values()
                    )
                if not ok:
                    broken.append(f"{path.relative_to(root.parent)}:{lineno}: {ref}")
    return broken


def test_every_cross_reference_in_cryptotrade_resolves() -> None:
    assert broken_references(PACKAGE) == []


def test_the_check_names_a_planted_stale_reference(tmp_path) -> None:
    root = tmp_path / "cryptotrade"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from cryptotrade.sub.impl import work\n")
    (root / "sub" / "impl.py").write_text(
        '"""Calls :func:`work`, :class:`Box.size`, :func:`~cryptotrade.sub.work`."""\n'
        "class Box:\n    size: int = 1\n\ndef work():\n"
        '    """Once :func:`cryptotrade.pipeline.train`, then :func:`gone`."""\n'
    )
    assert broken_references(root) == [
        "cryptotrade/sub/impl.py:6: cryptotrade.pipeline.train",
        "cryptotrade/sub/impl.py:6: gone",
    ]
