"""The setup files agree with each other, with the code's imports and with the config schema."""

import ast
import dataclasses
import re
import sys
import tomllib
from pathlib import Path

import yaml

from rnnrepro.spec import PalindromeSpec, TextSpec

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}


def _name_and_range(req):
    m = re.match(r"^([A-Za-z0-9_.-]+)\s*(.*)$", req.strip())
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = dict(_name_and_range(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    conda = dict(_name_and_range(d) for d in yaml.safe_load((ROOT / "environment.yml").read_text())[
        "dependencies"] if isinstance(d, str) and not d.startswith(("python", "pip")))
    assert {CONDA_NAMES.get(k, k): v for k, v in pip.items()} == conda


def test_schema_knows_every_spec_field():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    defs = schema["$defs"]
    grids = schema["properties"]["studies"]["additionalProperties"]["allOf"]
    execution = set(schema["properties"]["execution"]["properties"])
    for cls, key, grid in ((PalindromeSpec, "palindrome_fields", grids[0]),
                           (TextSpec, "text_fields", grids[1])):
        fields = {f.name for f in dataclasses.fields(cls)} - execution - {"seed"}
        in_schema = set(defs[key]["properties"]) - {"seed"}
        assert in_schema == fields, (cls.__name__, in_schema ^ fields)
        in_grid = set(grid["then"]["properties"]["grid"]["propertyNames"]["enum"])
        assert in_grid == fields, (cls.__name__, in_grid ^ fields)


# import name -> distribution name, where they differ
DISTRIBUTIONS = {"yaml": "pyyaml"}


def test_every_package_the_code_imports_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name_and_range(r)[0] for r in project["dependencies"]}
    imported = set()
    for path in (ROOT / "src" / "rnnrepro").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "rnnrepro"}
    missing = {DISTRIBUTIONS.get(m, m) for m in third_party} - declared
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
