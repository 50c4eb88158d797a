"""The package's layout (issue 13): no import cycle, no module or chapter reaching into another's
private names, and export and storage asking each compression instead of dispatching on classes."""

import ast
from pathlib import Path

from lcbook.compressions import registered_compressions

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lcbook"


def modules():
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def imports(name, path, mods):
    """(target module, imported name or None) for every import of the package in ``path``, at any
    depth (imports inside functions count: they are cycles postponed, not removed)."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + [node.module]) if node.module else ".".join(base)
            if not target.startswith("lcbook"):
                continue
            for a in node.names:
                yield (f"{target}.{a.name}", None) if f"{target}.{a.name}" in mods else (target, a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in mods:
                    yield a.name, None


def test_the_package_has_no_import_cycle():
    mods = modules()
    graph = {m: {t for t, _ in imports(m, f, mods) if t in mods and t != m} for m, f in mods.items()}
    state, cycles = {}, []

    def visit(u, path):
        state[u] = "open"
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                cycles.append(path[path.index(v):] + [u, v] if v in path else [u, v])
            elif v not in state:
                visit(v, path + [u])
        state[u] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, cycles


def test_no_module_imports_another_modules_private_names():
    mods = modules()
    bad = [(m, t, n) for m, f in mods.items() for t, n in imports(m, f, mods)
           if n and n.startswith("_") and not n.startswith("__") and t != m]
    assert not bad, bad


def test_export_and_storage_ask_the_compression_never_its_class():
    classes = set(registered_compressions())
    for f in (PKG / "export.py", PKG / "storage.py"):
        names = {n.id for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.Name)}
        names |= {a.name for n in ast.walk(ast.parse(f.read_text())) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert not names & classes, (f.name, sorted(names & classes))


def test_chapters_use_only_the_public_api():
    for f in sorted((ROOT / "chapters" / "src").glob("*.py")):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lcbook"):
                assert (node.module or "").count(".") <= 1, f"{f.name} imports from {node.module}"
                assert not any(a.name.startswith("_") for a in node.names), f"{f.name}: {node.module}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                assert not (isinstance(node.value, ast.Name) and node.value.id in
                            {"lcbook", "lc", "runs", "experiments", "export", "storage", "train", "evidence", "claims"}),\
                    f"{f.name} uses {node.value.id}.{node.attr}"


def test_tests_use_only_public_names():
    for f in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Attribute):
                assert not (node.attr.startswith("_") and not node.attr.startswith("__")), \
                    f"{f.name}:{node.lineno} reaches into {ast.unparse(node)}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lcbook"):
                assert not any(a.name.startswith("_") for a in node.names), f"{f.name}:{node.lineno}"
            if (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("setattr") and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant) and str(node.args[1].value).startswith("_")):
                assert False, f"{f.name}:{node.lineno} patches the private {node.args[1].value}"


def test_every_module_has_its_test_file():
    # the package's own modules; private helpers (_io, _checks, …) are tested through their users
    # except _io, and the command line (__main__) through test_experiments
    covered_elsewhere = {"compressions.coding": "test_export", "plots": "test_book",
                         "__main__": "test_experiments", "_version": "test_export"}
    for name in modules():
        short = name.removeprefix("lcbook").lstrip(".")
        if not short or short == "compressions" or (short.rsplit(".", 1)[-1].startswith("_") and short != "_io"
                                                    and short not in covered_elsewhere):
            continue
        test = covered_elsewhere.get(short, "test_" + short.rsplit(".", 1)[-1].lstrip("_"))
        assert (ROOT / "tests" / f"{test}.py").is_file(), f"{name} has no tests/{test}.py"
