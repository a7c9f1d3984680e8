"""config/README.md: every config key with its type, default and meaning, made from the
config schema (the spec fields' defaults from rnnrepro.config.spec), so the page cannot drift from
what the workflow accepts. `rnnrepro config-reference --out config/README.md` writes it; a
test checks it is current. A key the schema does not describe is an error here."""

import json

from rnnrepro.config.roles import REPORT_STUDIES
from rnnrepro.config.kinds import SPECS, choices
from rnnrepro.config.spec import CHOICES, Execution, SpecError

HEADER = """# Config reference

Generated from `workflow/schemas/config.schema.yaml` by
`rnnrepro config-reference --out config/README.md` (run it after editing the schema;
`tests/test_packaging.py` fails while this page is out of date). `config/config.yaml` is the
full reproduction, `config/test.yaml` the same DAG at test size. A `--configfile` replaces
the default config; `--config key=value` overrides one top-level key.
"""


def _resolve(prop, defs):
    while "$ref" in prop:
        ref = prop["$ref"].rsplit("/", 1)[-1]
        prop = {**defs[ref], **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _type(prop, defs):
    prop = _resolve(prop, defs)
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    kind = {"integer": "integer", "number": "number", "boolean": "true/false", "string": "text",
            "object": "mapping", "array": "list"}.get(prop.get("type"), "any")
    if kind == "list" and "items" in prop:
        return f"list of {_type(prop['items'], defs)}"
    bounds = [f"{sign} {prop[key]}" for key, sign in (
        ("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))
        if key in prop]
    return f"{kind} {', '.join(bounds)}" if bounds else kind


def _default(value):
    return "" if value is None else f"`{json.dumps(value)}`"


def _table(where, props, defs, defaults=None, required=(), words=CHOICES):
    """`defaults`: a dataclass's (the run specs, Execution), whose fields' words are `words`."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, prop in props.items():
        if defaults is not None and key in words:
            prop = {**prop, "enum": list(words[key])}
        described = _resolve(prop, defs).get("description") or prop.get("description")
        if not described:
            raise SpecError(f"the config schema does not describe {where}.{key}")
        default = (defaults or {}).get(key, _resolve(prop, defs).get("default"))
        default = "required" if key in required else _default(default)
        rows.append(f"| `{key}` | {_type(prop, defs)} | {default} | {' '.join(described.split())} |")
    return "\n".join(rows)


def config_reference(schema_path):
    from rnnrepro.config.studies import load_schema

    schema = load_schema(schema_path)
    defs = schema["$defs"]
    parts = [HEADER, " ".join(schema["description"].split())]
    for key, prop in schema["properties"].items():
        prop = _resolve(prop, defs)
        need = "required" if key in schema.get("required", ()) else "optional"
        parts.append(f"## `{key}` ({need})\n\n{' '.join(prop['description'].split())}")
        if key == "defaults":
            for kind in prop["properties"]:
                fields = defs[f"{kind}_fields"]["properties"]
                parts.append(f"### `defaults.{kind}`: the {kind} run spec\n\nThe fields a "
                             "study's `set` and `grid` take; the default is rnnrepro.config.spec's, where "
                             "neither `defaults` nor the study sets the field.\n\n"
                             + _table(f"defaults.{kind}", fields, defs,
                                      SPECS[kind].defaults(), words=choices(kind)))
        elif key == "studies":
            study = prop["additionalProperties"]
            parts.append("Each study, `studies.<name>` (a name of letters, digits and _):\n\n"
                         + _table("studies.<name>", study["properties"], defs,
                                  required=study["required"]))
            parts.append("The studies the report reads, by name:\n\n| study | kind |\n|---|---|\n"
                         + "\n".join(f"| `{n}` | {k} |" for n, k in REPORT_STUDIES.items()))
        elif key == "execution":  # rnnrepro.config.spec.Execution's values, and mem_mb, the schema's
            parts.append(_table(key, prop["properties"], defs, Execution.defaults()))
        elif "properties" in prop:
            parts.append(_table(key, prop["properties"], defs, required=prop.get("required", ())))
        else:
            parts.append(f"Type: {_type(prop, defs)}.")
    return "\n\n".join(parts) + "\n"
