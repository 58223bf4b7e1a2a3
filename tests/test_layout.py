"""Tasks own their knowledge: no code outside `robot_rewards/sim/tasks/` spells a task's name.

Per-task branches (`if task == "align_rope":`), tables keyed by task name and imports of a task's
module belong in the task's own file, behind a `Task` hook that the code outside asks through the
registry (`robot_rewards.sim.tasks.TASKS`); see docs/adding-a-task.md. Allowed outside: docstrings
and comments, and config defaults (the default of a class-level annotated field, e.g.
`task: str = "place_block"` in a command's dataclass config), plus the short list below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import robot_rewards
from robot_rewards.sim.tasks import TASKS

PACKAGE = Path(robot_rewards.__file__).parent
TASK_DIR = PACKAGE / "sim" / "tasks"
TASK_MODULES = {p.stem for p in TASK_DIR.glob("*.py")} - {"__init__", "base"}

# path (relative to the package) -> number of task-name literals allowed there, and why.
ALLOWED = {
    "bench/policy.py": 1,  # the policy benchmark times one fixed place_block scene
    "bench/rewards.py": 1,  # the reward benchmark scores rendered place_block scenes
    "bench/selection.py": 1,  # the task of a policy handed in directly (tests)
}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _config_defaults(tree: ast.AST) -> set[int]:
    """Every node inside the default of a class-level annotated field (dataclass configs)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    out.update(id(n) for n in ast.walk(stmt.value))
    return out


def task_name_literals(source: str, names) -> list[tuple[int, str]]:
    """(line, name) of each string constant equal to a task name in `source`, except docstrings
    and config defaults."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _config_defaults(tree)
    return sorted((n.lineno, n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names
                  and id(n) not in skip)


def task_module_imports(source: str, modules) -> list[tuple[int, str]]:
    """(line, module) of each import of a task's own module (`robot_rewards.sim.tasks.<task>`)."""
    prefix = "robot_rewards.sim.tasks"
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            hits += [(node.lineno, a.name) for a in node.names
                     if a.name.startswith(prefix + ".") and a.name.split(".")[3] in modules]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(prefix + ".") and node.module.split(".")[3] in modules:
                hits.append((node.lineno, node.module))
            elif node.module == prefix:
                hits += [(node.lineno, f"{prefix}.{a.name}") for a in node.names if a.name in modules]
    return hits


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        if TASK_DIR not in path.parents:
            yield path.relative_to(PACKAGE).as_posix(), path.read_text()


def test_no_task_name_is_spelled_outside_sim_tasks():
    found = {}
    for rel, source in _sources():
        hits = task_name_literals(source, set(TASKS))
        if hits:
            found[rel] = hits
    unexpected = {rel: hits for rel, hits in found.items() if len(hits) != ALLOWED.get(rel, 0)}
    stale = sorted(rel for rel in ALLOWED if rel not in found)
    assert not unexpected, (
        "task names outside robot_rewards/sim/tasks/ (move the per-task branch or table into the task "
        f"class behind a Task hook, see docs/adding-a-task.md): {unexpected}")
    assert not stale, f"allow-list entries no longer needed: {stale}"


def test_no_task_module_is_imported_outside_sim_tasks():
    found = {rel: hits for rel, source in _sources() if (hits := task_module_imports(source, TASK_MODULES))}
    assert not found, f"task modules imported outside robot_rewards/sim/tasks/ (ask the task instead): {found}"


def test_the_checks_catch_a_task_branch_and_spare_defaults_and_docs():
    names, modules = set(TASKS), TASK_MODULES
    branch = 'def f(task):\n    """Works for place_block."""\n    if task == "align_rope":\n        return 1\n'
    assert task_name_literals(branch, names) == [(3, "align_rope")]
    assert task_name_literals('SCALE = {"push_block": 0.1}\n', names) == [(1, "push_block")]
    assert task_name_literals('ok = name in ("stack_blocks",)\n', names) == [(1, "stack_blocks")]
    config = ('from dataclasses import dataclass, field\n\n@dataclass\nclass C:\n    """place_block."""\n\n'
              '    task: str = "place_block"\n    tasks: list = field(default_factory=lambda: ["align_rope"])\n')
    assert task_name_literals(config, names) == []
    assert task_name_literals('x = "place_block_auc_all"  # align_rope\n', names) == []
    assert task_module_imports("from robot_rewards.sim.tasks.place_block import BOWL_FLOOR\n", modules) == \
        [(1, "robot_rewards.sim.tasks.place_block")]
    assert task_module_imports("from robot_rewards.sim.tasks import align_rope\n", modules) == \
        [(1, "robot_rewards.sim.tasks.align_rope")]
    assert task_module_imports("from robot_rewards.sim.tasks import TASKS\n"
                               "from robot_rewards.sim.tasks.base import Task\n", modules) == []
