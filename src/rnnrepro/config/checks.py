"""The rules every entry point applies to the values it is given, in one place: the config
check (studies.check_config), the training command's flags and --spec file, and the
commands whose arguments are config values (download, corpus-stats, complete, sample,
aggregate, scorecard, figure, grad-probe). Whatever the config refuses, they refuse, with a
message of one form: `<where>: <key> must be <rule>, got <value>`.

- Types and ranges of config keys are the schema's (workflow/schemas/config.schema.yaml);
  a departure is said in those words (`describe`), never as jsonschema's own.
- Values of run specs and execution settings are rnnrepro.config.spec's (its dataclasses).
- Text that is typed where a number or a flag is wanted (a command-line flag, or a value
  Snakemake's `--config` hands over as text) is read as the schema's type first (`coerce`).
- Every number is finite, every text can travel through a command line, a file name and
  JSON (`walk_problems`), and a run fits in the memory it is given (`memory_problem`).

Torch-free: the Snakefile imports it through studies.py.
"""

import math
import os
import re

from rnnrepro.config.spec import TYPE_WORDS, Common, SpecError


def describe(error, key=None):
    """A jsonschema error as `<key> must be <rule>, got <value>` (the key: the last part
    of its path, or `key` for a value checked alone), or None for an error that is not
    about one value."""
    schema, value, v = error.schema, error.instance, error.validator
    rule = {
        "type": lambda: TYPE_WORDS.get(error.validator_value, error.validator_value)
        if isinstance(error.validator_value, str)
        else " or ".join(TYPE_WORDS.get(t, t) for t in error.validator_value),
        "minimum": lambda: f"≥ {schema['minimum']}",
        "exclusiveMinimum": lambda: f"> {schema['exclusiveMinimum']}",
        "maximum": lambda: f"≤ {schema['maximum']}",
        "exclusiveMaximum": lambda: f"< {schema['exclusiveMaximum']}",
        "enum": lambda: f"one of {tuple(schema['enum'])}",
        "pattern": lambda: schema.get("x-rule", f"text matching {schema['pattern']}"),
        "minLength": lambda: "non-empty text",
        "minItems": lambda: f"a list of at least {schema['minItems']} value"
                            + ("s" if schema["minItems"] > 1 else ""),
        "minProperties": lambda: f"a mapping of at least {schema['minProperties']} key"
                                 + ("s" if schema["minProperties"] > 1 else ""),
        "uniqueItems": lambda: "a list without repeats",
        "required": lambda: "given",
        "additionalProperties": lambda: "a key of this mapping",
    }.get(v)
    if rule is None:
        return None
    path = list(error.absolute_path)
    if v == "required":  # the key that is missing, where it is missing
        missing = re.match(r"'(.+)' is a required property", error.message)
        return f"{missing.group(1) if missing else 'a key'} must be given"
    if v == "additionalProperties":
        unknown = sorted(set(value) - set(schema.get("properties", {})))
        verb = "is not one of its keys" if len(unknown) == 1 else "are not among its keys"
        return f"{', '.join(unknown)} {verb}"
    name = name_at(path)[1] if any(isinstance(p, str) for p in path) else (key or "the value")
    return f"{name} must be {rule()}, got {value!r}"


# --- text typed where the schema wants another type -------------------------------------------

_INT = re.compile(r"[-+]?\d+", re.ASCII)
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|nan)", re.IGNORECASE | re.ASCII)
_BOOL = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False,
         "1": True, "0": False}


def coerce(value, schema):
    """`value` read as `schema`'s type where it is text that spells one (a list or a mapping
    item by item): "3" as 3, "3e-3" as 0.003, "true" as True. Anything else is returned as
    it is, for the check to name it."""
    kind = schema.get("type")
    if isinstance(value, list) and kind == "array" and "items" in schema:
        return [coerce(v, schema["items"]) for v in value]
    if isinstance(value, dict) and kind == "object":
        props = schema.get("properties", {})
        other = schema.get("additionalProperties")
        return {k: coerce(v, props.get(k, other if isinstance(other, dict) else {}))
                for k, v in value.items()}
    if not isinstance(value, str):
        return value
    text = value.strip()
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds and _INT.fullmatch(text):
        return int(text)
    if "number" in kinds and _FLOAT.fullmatch(text):
        return int(text) if _INT.fullmatch(text) else float(text)
    if "boolean" in kinds and text.lower() in _BOOL:
        return _BOOL[text.lower()]
    return value


# --- numbers and text anywhere in a config or a spec ---------------------------------------------

def text_problem(text):
    """Why `text` cannot travel through a command line, a file name and JSON (`must ...`),
    or None."""
    if "\0" in text:
        return "must not hold a NUL character (no command line or file name can carry one)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"must not hold {text[err.start]!r} (not a character: UTF-8 cannot write it)"
    return None


def value_problem(value):
    """Why a single value cannot be used anywhere in the pipeline (`must ...`), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return text_problem(value) if isinstance(value, str) else None


def name_at(path, prefix=""):
    """(where, key) of a value at `path` (keys and list indices), as messages name them:
    ("config studies.x.grid", "temperature[1]")."""
    last = max((i for i, p in enumerate(path) if isinstance(p, str)), default=0)
    key = "".join([str(path[last]) if path else "the value"] + [f"[{i}]" for i in path[last + 1:]])
    parents = ".".join(map(str, path[:last]))
    return " ".join(p for p in (prefix, parents) if p), key


def walk_problems(obj, prefix="", path=()):
    """Every number finite and every text (keys included) carriable, in a config (`prefix`
    "config") or a part of it: the first problem as `<where>: <key> must be ..., got
    <value>`, as the other checks name a key, or None."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        here = (*path, key)
        if isinstance(key, str) and text_problem(key):  # the key itself: shown as written
            where = name_at([*path, "k"], prefix)[0]
            return f"{where + ': ' if where else ''}a key {text_problem(key)}, got {key!r}"
        problem = value_problem(value)
        if problem:
            where, name = name_at(list(here), prefix)
            return f"{where + ': ' if where else ''}{name} {problem}, got {value!r}"
        if isinstance(value, (dict, list)):
            found = walk_problems(value, prefix, here)
            if found:
                return found
    return None


# --- memory ----------------------------------------------------------------------------------

ROW_BYTES = 200   # a metrics, evaluation or timing row as the loop keeps it (a dict of floats)


def _rows(steps, every):
    return steps // every + 1


def memory_needs(spec):
    """The least memory (bytes) a run of `spec` holds at once, by what holds it: a lower
    bound (the parameters with their gradients, the held-out set, the rows the loop keeps,
    the samples), so that a spec above any budget surely fails. {key: (bytes, what)}."""
    h, needs = spec.hidden, {}
    rows = (_rows(spec.steps, spec.log_every) + _rows(spec.steps, spec.eval_every)
            + spec.steps // Common.FLUSH) * ROW_BYTES
    needs["steps"] = (rows, "the rows of metrics, evaluations and timings kept while it trains")
    if spec.kind in ("palindrome", "phased"):
        g = 1 if spec.model == "rnn" else 4
        d = 10 if spec.input_encoding == "onehot" else 1
        params = g * h * (d + h + 1) + 10 * h  # the cell, and the readout W_p
        needs["eval_size"] = (8 * spec.eval_size * (spec.input_length + 1), "the held-out set")
        activations = 4 * spec.batch * spec.input_length * g * h
    elif spec.kind == "frequency":  # up to 125 samples (1,250 at 0.1 ms) of value, time, mask
        length = 1250 if spec.sampling == "fine" else 125
        params = 4 * h * (2 + h + 1) + 2 * h
        # the held-out set, and the gate of one evaluation chunk (1,000 sequences) as it is scored
        needs["eval_size"] = (13 * spec.eval_size * length + 5 * min(spec.eval_size, 1000) * length * h,
                              "the held-out set and one evaluation chunk's gate")
        activations = 4 * spec.batch * length * 6 * h
    else:
        # the recurrent weights and biases of every layer (the first layer's input weights and
        # the readout grow with the vocabulary, unknown here: left out)
        params = 4 * h * (h + 2) + (spec.layers - 1) * 4 * h * (2 * h + 2)
        activations = 4 * spec.batch * spec.seq_length * 4 * h * spec.layers
        sample_steps = spec.sample_step_count() + 1  # and the lowest held-out loss's
        per_step = spec.samples_per_step * (1 + len(spec.sampling_temperatures()))
        needs["sample_every"] = (sample_steps * (64 + per_step * (ROW_BYTES + spec.sample_length)),
                                 "the sample steps and their samples")
    needs["hidden"] = (8 * params + activations, "the weights, their gradients and one step's "
                                                 "activations")
    return needs


def memory_problem(spec, budget_mb, budget_name):
    """A SpecError if a run of `spec` cannot fit in `budget_mb` MB, naming the key that asks
    the most (its `field`), or None."""
    needs = memory_needs(spec)
    total = sum(b for b, _ in needs.values())
    if total <= budget_mb * 2 ** 20:
        return None
    key, (most, what) = max(needs.items(), key=lambda kv: kv[1][0])
    way = {"sample_every": "raise it", "steps": "lower it, or raise log_every and eval_every"}
    return SpecError(f"{key} must let a run fit in {budget_name} ({budget_mb} MB), got "
                     f"{getattr(spec, key)}: the run would hold at least {_size(total)} ({what}: "
                     f"{_size(most)}); {way.get(key, 'lower it')}", key)


def _size(n):
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def machine_memory_mb():
    """This machine's memory (MB): the budget of a run trained by hand."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 ** 20
    except (ValueError, OSError, AttributeError):
        return None
