"""The setup files agree with each other, with the code's imports and with the config schema."""

import ast
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from rnnrepro.config import studies as S
from rnnrepro.config.spec import Execution, PalindromeSpec, TextSpec

ROOT = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash")
CONDA_NAMES = {"torch": "pytorch"}


def _name_and_range(req):
    m = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", req.strip())
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _conda_dependencies(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return dict(_name_and_range(d) for d in deps if isinstance(d, str) and not d.startswith("pip"))


def _pyproject(extra=None):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return {CONDA_NAMES.get(k, k): v for k, v in map(_name_and_range, reqs)}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    python = {"python": ">=" + tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "project"]["requires-python"].lstrip(">=")}
    assert _conda_dependencies(ROOT / "environment.yml") == {**python, **_pyproject("test")}


def test_the_rules_conda_environments_hold_the_package_dependencies():
    """workflow/envs/: what every rule runs under --sdm conda (no Snakemake in it), and the
    report's, which adds a TeX engine."""
    wanted = {"python": ">=3.11", **_pyproject("tensorboard")}
    for name in ("snakemake", "snakemake-executor-plugin-slurm"):
        del wanted[name]
    envs = ROOT / "workflow" / "envs"
    assert _conda_dependencies(envs / "rnnrepro.yaml") == wanted
    assert _conda_dependencies(envs / "report.yaml") == {**wanted, "tectonic": ">=0.15"}
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    # every shell rule names an environment (snakemake --lint checks the same in the workflow test)
    assert rules.count("    shell:") == rules.count("    conda:\n        ENV") + rules.count(
        "    conda:\n        REPORT_ENV")


def test_schema_knows_every_spec_field_and_restates_none_of_its_values():
    """The schema names every spec and Execution field with its type; their defaults, words and
    ranges are rnnrepro.config.spec's alone (one owner)."""
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    defs = schema["$defs"]
    execution = schema["properties"]["execution"]["properties"]
    for cls, key in ((PalindromeSpec, "palindrome_fields"), (TextSpec, "text_fields")):
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(defs[key]["properties"]) == fields, (cls.__name__, set(defs[key]["properties"]) ^ fields)
    assert set(execution) - {"mem_mb"} == {f.name for f in dataclasses.fields(Execution)}
    owned = [*defs["palindrome_fields"]["properties"].items(), *defs["text_fields"]["properties"].items(),
             *((k, v) for k, v in execution.items() if k != "mem_mb")]
    for name, prop in owned:
        restated = set(prop) & {"default", "enum", "minimum", "maximum", "exclusiveMinimum",
                                "exclusiveMaximum"}
        assert not restated, (name, restated)
        assert "type" in prop, name


# import name -> distribution name, where they differ
DISTRIBUTIONS = {"yaml": "pyyaml"}


def test_every_package_the_code_imports_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name_and_range(r)[0] for r in project["dependencies"]}
    imported = set()
    for path in (ROOT / "src" / "rnnrepro").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "rnnrepro"}
    missing = {DISTRIBUTIONS.get(m, m) for m in third_party} - declared
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def test_rules_run_the_checkouts_code_with_the_python_of_their_environment(tmp_path):
    """The bash before every rule's command (studies.shell_prefix): `rnnrepro` is the
    checkout's src/ run by the Python that runs Snakemake, or under --sdm conda by the
    environment's `python`, first on PATH (here a stand-in environment whose python is this
    one), never by whatever else is on PATH."""
    src = ROOT / "src"
    probe = ' -c "import sys, rnnrepro; print(sys.executable, rnnrepro.__file__)"'
    env_bin = tmp_path / "conda-env" / "bin"
    env_bin.mkdir(parents=True)
    (env_bin / "python").symlink_to(sys.executable)
    # the conda case: the environment's bin first on PATH, as Snakemake activates it
    cmd = S.shell_prefix(src, "python") + "rnnrepro --help >/dev/null && python" + probe
    out = subprocess.run([BASH, "-c", cmd], env={"PATH": f"{env_bin}:/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    exe, module = out.stdout.split()
    assert exe == str(env_bin / "python") and Path(module) == src / "rnnrepro" / "__init__.py"
    # no deployment method: the named interpreter, even with a PATH that has no Python at all
    cmd = S.shell_prefix(src, sys.executable) + "rnnrepro check-config config/test.yaml"
    out = subprocess.run([BASH, "-c", cmd], env={"PATH": "/nonexistent"}, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "config/test.yaml: valid" in out.stdout, out.stderr


def test_a_checkout_path_reaches_the_shell_as_data(tmp_path):
    """A checkout path holding $(...), `...`, a set $VAR, quotes and spaces: the prefix runs
    that checkout's package and nothing the path spells."""
    hostile = tmp_path / "a $(touch ran-dollar) `touch ran-tick` $HOME 'q' \"d\" x"
    hostile.mkdir()
    shutil.copytree(ROOT / "src", hostile / "src", ignore=shutil.ignore_patterns("__pycache__"))
    probe = ' -c "import rnnrepro; print(rnnrepro.__file__)"'
    cmd = S.shell_prefix(hostile / "src", sys.executable) + "rnnrepro --help >/dev/null && " \
        + shlex.quote(sys.executable) + probe
    out = subprocess.run([BASH, "-c", cmd], env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)},
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == hostile / "src" / "rnnrepro" / "__init__.py"
    assert not list(tmp_path.glob("ran-*")), "the path ran a command"


def test_a_non_editable_install_finds_what_the_rules_pass_it(tmp_path):
    """Installed as a wheel (not editable), the package needs nothing beside its own files:
    the templates, the schema and the course baseline are the checkout's, found from the
    working directory the workflow runs in."""
    target = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                            "--no-build-isolation", "--target", str(target), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    script = (
        "import rnnrepro, pathlib; from rnnrepro.cli import load_speed; from rnnrepro.config import studies\n"
        "from rnnrepro.report import context, latex\n"
        "assert not pathlib.Path(rnnrepro.__file__).is_relative_to(pathlib.Path('src').resolve())\n"
        "latex.environment(context.TEMPLATES).get_template('report.tex.j2')\n"
        "load_speed().load_baseline()\n"
        "print(len(studies.check_config_file('config/test.yaml')[1]), rnnrepro.__file__)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={
        "PYTHONPATH": str(target), "PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    runs, module = out.stdout.split()
    assert int(runs) > 0 and Path(module).is_relative_to(target)


def test_config_readme_is_generated_from_the_schema_and_describes_every_key(tmp_path):
    from rnnrepro.config.reference import config_reference
    from rnnrepro.config.spec import SpecError

    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    page = config_reference(schema)
    assert page == (ROOT / "config" / "README.md").read_text(), (
        "config/README.md is out of date: rnnrepro config-reference --out config/README.md")
    data = yaml.safe_load(schema.read_text())
    for section in ("corpus", "execution", "bench", "report"):
        for key in data["properties"][section]["properties"]:
            assert f"| `{key}` |" in page, (section, key)
    for field in dataclasses.fields(PalindromeSpec):
        assert f"| `{field.name}` |" in page
    # a key the schema does not describe stops the page from being made
    del data["properties"]["report"]["properties"]["completion_length"]["description"]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="does not describe report.completion_length"):
        config_reference(tmp_path / "s.yaml")


@pytest.mark.parametrize("tool", [["ruff", "check"], ["snakefmt", "--check", "Snakefile", "workflow"]])
def test_code_passes_the_linters_configured_in_pyproject(tool):
    """ruff (E, F, W at 110 columns) on the Python, snakefmt on the Snakefile and rules; both
    read their settings from pyproject.toml and are in the test extra."""
    exe = Path(sys.executable).with_name(tool[0])
    res = subprocess.run([str(exe), *tool[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def test_every_rules_code_inputs_are_the_modules_its_command_imports():
    """The rules' code= inputs come from rnnrepro.sources (the imports), never from lists kept
    by hand: every module a command reaches is there, the figure registry (captions) for the
    report, and a run's code is the loop, its task and its own model, nothing else."""
    from rnnrepro import sources

    assert set(sources.command("report")) >= {"report/context.py", "report/latex.py",
                                              "analysis/scorecard.py", "report/registry.py",
                                              "files.py", "cli.py"}
    figure = sources.command("figure")
    assert "report/drawings.py" in figure and "analysis/scorecard.py" in figure
    loop = {"config/__init__.py", "config/spec.py", "data/__init__.py", "data/seeds.py", "files.py",
            "models/__init__.py", "train/__init__.py", "train/fastpath.py", "train/loop.py",
            "train/tasks.py"}
    recurrent = {"data/palindromes.py", "models/bptt.py", "models/recurrent.py",
                 "train/palindrome.py", "train/stack.py"}
    assert set(sources.run_code(PalindromeSpec(model="rnn"))) == loop | recurrent | {"models/rnn.py"}
    assert set(sources.run_code(PalindromeSpec(model="lstm"))) == loop | recurrent | {"models/lstm.py"}
    assert set(sources.run_code(TextSpec())) == loop | {"data/corpus.py", "models/sampling.py",
                                                         "models/text.py", "train/text.py"}
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    listed = re.findall(r"^\s+code=(.*)$", rules, re.M)
    assert listed and all(c.startswith(("command_code(", "run_code")) for c in listed), listed
    with pytest.raises(KeyError, match="no command 'nope'"):
        sources.command("nope")


def test_a_new_module_reached_through_a_lazy_import_joins_the_command(tmp_path, monkeypatch):
    from rnnrepro import sources

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "cli.py").write_text("from .spec import X\n\ndef _helper():\n    from .extra import y\n\n"
                                    "def cmd_go(args):\n    _helper()\n\ndef cmd_other(args):\n    pass\n")
    (package / "spec.py").write_text("")
    (package / "extra.py").write_text("from . import deeper\n")
    (package / "deeper.py").write_text("from rnnrepro.sub.leaf import z\n")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "leaf.py").write_text("from .. import spec\n")
    monkeypatch.setattr(sources, "PACKAGE", package)
    sources._tree.cache_clear()
    try:
        assert sources.command("go") == ["cli.py", "deeper.py", "extra.py", "spec.py", "sub/__init__.py",
                                         "sub/leaf.py"]
        assert sources.command("other") == ["cli.py", "spec.py"]
    finally:
        sources._tree.cache_clear()
