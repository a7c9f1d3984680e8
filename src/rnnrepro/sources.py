"""Which of the package's modules a piece of work runs, read from their imports.

The workflow's rules declare the code they run as inputs, so that editing it reruns them;
these lists come from here, not from hand-kept lists: `command("figure")` is cli.py and
everything the `rnnrepro figure` command imports (at the top of cli.py or inside its
cmd_figure function), followed through every module it reaches, lazy imports included.
`run_code(spec)` is the code that decides one training run's results: the loop, the run's
task and its own model, so that editing one model's module retrains that model's runs only.

Modules are named by their path in the package ("train/loop.py"); a module's package
`__init__.py` files count as code it runs.
"""

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
NAME = PACKAGE.name

# Where a run is trained and who trains it, whose folder it may write into, its progress bar,
# its live curves, how the CPU computes (an execution setting, like the device) and the
# testing aid that makes a run diverge on request are not what its results are a function
# of: these modules are left out of a run's code and not followed.
NOT_RESULTS = ("run/progress.py", "run/events.py", "run/numerics.py", "run/phases.py",
               "run/folders.py", "train/faults.py")

# The code of a run of each kind beside its model: the loop and the task (for palindrome
# runs also the stack, which trains runs of one shape side by side, as jobs.py decides).
TASKS = {"palindrome": ("train/palindrome.py", "train/stack.py"), "text": ("train/text.py",),
         "phased": ("train/phased.py",), "frequency": ("train/frequency.py",)}


def _path(dotted):
    """The file of a module of the package ("rnnrepro.train.loop" -> "train/loop.py"), or
    None where `dotted` is not one."""
    parts = dotted.split(".")
    if parts[0] != NAME:
        return None
    rel = Path(*parts[1:]) if len(parts) > 1 else Path()
    if (PACKAGE / rel).with_suffix(".py").is_file() and len(parts) > 1:
        return str(rel.with_suffix(".py"))
    if (PACKAGE / rel / "__init__.py").is_file():
        return str(rel / "__init__.py")
    return None


def _packages(module):
    """The `__init__.py` files Python runs before `module` (the top package's aside)."""
    parent, found = Path(module).parent, []
    while parent != Path("."):
        found.append(str(parent / "__init__.py"))
        parent = parent.parent
    return found


@functools.cache
def _tree(module):
    return ast.parse((PACKAGE / module).read_text(), filename=module)


def _absolute(node, module):
    """The dotted name an ImportFrom node imports from, relative ones resolved."""
    if node.level == 0:
        return node.module or ""
    base = [NAME, *Path(module).parent.parts][: len(Path(module).parent.parts) + 2 - node.level]
    return ".".join(base + ([node.module] if node.module else []))


def _imported(nodes, module):
    """Package modules imported by these nodes of `module`."""
    found = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                found |= {_path(alias.name) for alias in sub.names}
            elif isinstance(sub, ast.ImportFrom):
                source = _absolute(sub, module)
                for alias in sub.names:  # a module imported from its package, or a name of it
                    found.add(_path(f"{source}.{alias.name}") or _path(source))
    return found - {None}


def closure(*modules, exclude=NOT_RESULTS):
    """The modules (paths in the package, sorted) that `modules` import, directly or not,
    themselves and their packages included; `exclude` ones are left out and not followed."""
    seen, todo = set(), [m for m in modules if m not in exclude]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        found = _imported([_tree(module)], module) | set(_packages(module))
        todo += sorted(found - seen - set(exclude))
    return sorted(seen)


def run_code(spec):
    """The modules that decide the results of the run of `spec`: the training loop, the
    task of its kind and, for a palindrome run, its own model's module (loaded by name, so
    no other module's imports reach it)."""
    return list(_run_code(spec.kind, spec.model if spec.kind == "palindrome" else None))


@functools.cache  # the workflow asks for every run, a job for every run it may take on
def _run_code(kind, model):
    from rnnrepro.models import module_of

    return tuple(closure("train/loop.py", *TASKS[kind], *([module_of(model)] if model else [])))


def command(name):
    """The modules `rnnrepro <name>` runs: cli.py, what cli.py imports at its top level and
    what its cmd_<name> function imports (and the cli.py helpers it calls), with all that
    those import."""
    cli = _tree("cli.py")
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
    used = _imported(top, "cli.py") | _imported(body.values(), "cli.py")
    return sorted(set(closure(*sorted(used), exclude=())) | {"cli.py"})
