"""The setup files agree with each other and with the config schema."""

import dataclasses
import re
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
