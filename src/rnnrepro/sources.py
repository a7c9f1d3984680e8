"""Which of the package's modules a piece of work runs, read from their imports.

The workflow's rules declare the code they run as inputs, so that editing it reruns them;
these lists come from here, not from hand-kept lists: `command("figure")` is cli.py and
everything the `rnnrepro figure` command imports (at the top of cli.py or inside its
cmd_figure function), followed through every module it reaches, lazy imports included.
"""

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


@functools.cache
def _tree(module):
    return ast.parse((PACKAGE / f"{module}.py").read_text(), filename=f"{module}.py")


def _imported(nodes):
    """Package modules imported by these nodes (`from . import x`, `from .x import y`)."""
    found = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.ImportFrom) and sub.level == 1:
                if sub.module:
                    found.add(sub.module.split(".")[0])
                else:
                    found |= {alias.name for alias in sub.names}
    return found


def closure(*modules, exclude=()):
    """The modules (file names, sorted) that `modules` import, directly or not, themselves
    included; `exclude` ones are left out and not followed."""
    seen, todo = set(), [m for m in modules if m not in exclude]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += sorted(_imported([_tree(module)]) - seen - set(exclude))
    return sorted(f"{m}.py" for m in seen)


def command(name):
    """The modules `rnnrepro <name>` runs: cli.py, what cli.py imports at its top level and
    what its cmd_<name> function imports (and the cli.py helpers it calls), with all that
    those import."""
    cli = _tree("cli")
    functions = {n.name: n for n in cli.body if isinstance(n, ast.FunctionDef)}
    func = "cmd_" + name.replace("-", "_")
    if func not in functions:
        raise KeyError(f"rnnrepro has no command {name!r} (no cli.{func})")
    body, todo = {}, [func]
    while todo:  # the command's function and the cli.py functions it calls
        node = functions[todo.pop()]
        body[node.name] = node
        todo += [sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)
                 and sub.id in functions and sub.id not in body]
    top = [n for n in cli.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    used = _imported(top) | _imported(body.values())
    return closure(*sorted(used)) + ["cli.py"]
