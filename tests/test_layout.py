"""The package's architecture: the library never imports its lab, and no rule is written twice."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "infsplign_scene"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the package modules that a file imports (relative imports resolved)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("infsplign_scene")}


def library_files() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "lab" not in p.relative_to(PACKAGE).parts]


def test_the_library_never_imports_the_lab_except_the_cli_commands_that_run_it():
    offenders = {}
    for path in library_files():
        lab = sorted(name for name in imported_modules(path) if name.startswith("infsplign_scene.lab"))
        if lab and path.name != "cli.py":
            offenders[str(path.relative_to(PACKAGE))] = lab
    assert offenders == {}


def test_the_resolver_sees_relative_imports_of_the_lab():
    """The check above can fail: the CLI's lab commands are found by it."""
    assert any(name.startswith("infsplign_scene.lab") for name in imported_modules(PACKAGE / "cli.py"))


def test_predicates_are_spelled_out_in_one_module_only():
    """Only relations.py maps predicates to axes, signs, inverses or phrases."""
    spelled = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
                if {"left_of", "right_of"} <= keys or {"above", "below"} <= keys:
                    spelled.setdefault(str(path.relative_to(PACKAGE)), node.lineno)
    assert set(spelled) == set()


def test_library_modules_stay_small():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines()) for p in library_files()}
    assert {name: lines for name, lines in sizes.items() if lines > 330} == {}
