"""Study configs: frozen (nested) dataclasses, presets, `--set key=value` and TOML overrides.

A config is a frozen dataclass whose fields may be nested config dataclasses; keys are dotted
(`model.depth`). Fields declared with `param(...)` carry their bounds and a help line, so a
bad value is refused with one line that names the key and what it accepts:

    @dataclass(frozen=True)
    class Model:
        depth: int = param(4, min=1, help="number of Linear layers")

Overrides are applied in order preset -> TOML file -> `--set`, each validated.
A comma in a `--set` value makes a sweep (`model.depth=4,8,12`); tuple-typed fields take
bracketed lists (`depths=[4,12]`), so `depths=[4],[4,12]` sweeps over two tuples.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from repdyn.bench.errors import ConfigError, UserError

C = TypeVar("C")


def param(
    default: Any,
    *,
    help: str = "",
    min: float | None = None,
    max: float | None = None,
    choices: Iterable[Any] | None = None,
) -> Any:
    """A config field with a default, an optional closed range or choice set, and a help line."""
    meta = {"help": help, "min": min, "max": max, "choices": tuple(choices) if choices is not None else None}
    return dataclasses.field(default=default, metadata=meta)


def is_config(obj: Any) -> bool:
    """True for a config dataclass class or instance."""
    return dataclasses.is_dataclass(obj)


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a config dataclass's fields."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def flat_fields(cls: type, prefix: str = "") -> dict[str, tuple[dataclasses.Field, Any]]:
    """Every leaf field of a (nested) config class, keyed by dotted name, with its type."""
    out: dict[str, tuple[dataclasses.Field, Any]] = {}
    hints = field_types(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(flat_fields(hints[f.name], key + "."))
        else:
            out[key] = (f, hints[f.name])
    return out


def to_dict(config: Any) -> dict[str, Any]:
    """Nested plain dict (JSON-ready: tuples become lists) of a config instance."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted-key view of a nested dict (as read from TOML or JSON)."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Rebuild a config from `to_dict` output (e.g. stored JSON), validating every value."""
    return override(cls(), flatten(data))


def get(config: Any, key: str) -> Any:
    """Value of a dotted key."""
    value = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def override(config: C, values: Mapping[str, Any], source: str = "", *, check: bool = True) -> C:
    """A copy of `config` with dotted keys replaced by typed, validated values.

    String values are parsed by the field's type; other values are type-checked. Cross-field
    `validate()` checks run at the end unless `check=False` (for intermediate override stages).
    """
    fields = flat_fields(type(config))
    for key, raw in values.items():
        if key not in fields:
            raise ConfigError(source + key, f"unknown key; known keys: {', '.join(sorted(fields))}")
        field, typ = fields[key]
        value = parse_value(raw, typ, source + key) if isinstance(raw, str) else coerce(raw, typ, source + key)
        check_bounds(value, field, source + key)
        config = _replace_dotted(config, key.split("."), value)
    if check:
        validate(config)
    return config


def validate(config: Any, prefix: str = "") -> None:
    """Run every `validate()` method of the config tree (cross-field checks), prefixing keys."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, f"{prefix}{f.name}.")
    check = getattr(config, "validate", None)
    if callable(check):
        try:
            check()
        except ConfigError as err:
            raise ConfigError(prefix + err.key, str(err).split(": ", 1)[1]) from None


def _replace_dotted(config: Any, parts: list[str], value: Any) -> Any:
    if len(parts) == 1:
        return dataclasses.replace(config, **{parts[0]: value})
    child = getattr(config, parts[0])
    return dataclasses.replace(config, **{parts[0]: _replace_dotted(child, parts[1:], value)})


def describe_type(typ: Any) -> str:
    """Human phrase for what a field accepts (`an integer`, `one of relu, tanh`, ...)."""
    origin = typing.get_origin(typ)
    if typ is bool:
        return "true or false"
    if typ is int:
        return "an integer"
    if typ is float:
        return "a number"
    if typ is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(typ))
    if origin is tuple:
        return f"a list like [a,b] of {describe_type(typing.get_args(typ)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none" if a is type(None) else describe_type(a) for a in typing.get_args(typ))
    return getattr(typ, "__name__", str(typ))


def parse_value(text: str, typ: Any, key: str) -> Any:
    """Parse the text of a `--set` value as the field's type, or raise ConfigError naming the key."""
    text = text.strip()
    origin = typing.get_origin(typ)
    wrong = ConfigError(key, f"got {text!r}, expected {describe_type(typ)}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if type(None) in args and text.lower() in ("none", "null", ""):
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return parse_value(text, arg, key)
            except ConfigError:
                continue
        raise wrong
    if typ is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise wrong
    if typ is int:
        try:
            number = float(text.replace("_", ""))
        except ValueError:
            raise wrong from None
        if not number.is_integer():
            raise wrong
        return int(number)
    if typ is float:
        try:
            number = float(text)
        except ValueError:
            raise wrong from None
        if not math.isfinite(number):
            raise wrong
        return number
    if typ is str:
        return text
    if origin is Literal:
        for choice in typing.get_args(typ):
            if str(choice) == text:
                return choice
        raise wrong
    if origin is tuple:
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        items = [s for s in inner.split(",") if s.strip()] if inner.strip() else []
        return tuple(parse_value(item, typing.get_args(typ)[0], key) for item in items)
    raise ConfigError(key, f"cannot be set from the command line (type {typ})")


def coerce(value: Any, typ: Any, key: str) -> Any:
    """Type-check an already-typed value (from TOML, JSON or a preset), converting int -> float."""
    origin = typing.get_origin(typ)
    wrong = ConfigError(key, f"got {value!r}, expected {describe_type(typ)}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except ConfigError:
                continue
        raise wrong
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise wrong
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise wrong
    if typ is str:
        if isinstance(value, str):
            return value
        raise wrong
    if origin is Literal:
        if value in typing.get_args(typ):
            return value
        raise wrong
    if origin is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(coerce(v, typing.get_args(typ)[0], key) for v in value)
        raise wrong
    raise wrong


def check_bounds(value: Any, field: dataclasses.Field, key: str) -> None:
    """Enforce a `param`'s min/max/choices on a scalar or on every item of a tuple."""
    meta = field.metadata
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if item is None:
            continue
        if meta.get("choices") is not None and item not in meta["choices"]:
            raise ConfigError(key, f"got {item!r}, expected one of {', '.join(map(str, meta['choices']))}")
        low, high = meta.get("min"), meta.get("max")
        if low is not None and item < low:
            raise ConfigError(key, f"got {item!r}, expected a value >= {low}")
        if high is not None and item > high:
            raise ConfigError(key, f"got {item!r}, expected a value <= {high}")


def split_assignment(text: str) -> tuple[str, list[str]]:
    """Split `key=v1,v2` into the key and its sweep values; commas inside [..] stay together."""
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise UserError(f"--set {text!r}: empty key")
    values, depth, current = [], 0, ""
    for ch in raw:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += ch
    values.append(current)
    return key, values


def expand_sweep(assignments: Iterable[str]) -> list[dict[str, str]]:
    """All settings of `--set` assignments: the cartesian product of their comma lists."""
    keys, options = [], []
    for text in assignments:
        key, values = split_assignment(text)
        if key in keys:
            options[keys.index(key)] = values
        else:
            keys.append(key)
            options.append(values)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*options)]


def load_toml(path: str | Path) -> dict[str, Any]:
    """Dotted overrides from a TOML file (nested tables are config sections)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--config {path}: no such file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"--config {path}: not valid TOML ({err})") from None
    return flatten(data)


def help_lines(cls: type, defaults: Any | None = None) -> list[str]:
    """One line per key: name, accepted values, default, help (for `repdyn run STUDY --keys`)."""
    instance = defaults if defaults is not None else cls()
    lines = []
    for key, (field, typ) in flat_fields(cls).items():
        default = get(instance, key)
        bounds = []
        if field.metadata.get("min") is not None:
            bounds.append(f">= {field.metadata['min']}")
        if field.metadata.get("max") is not None:
            bounds.append(f"<= {field.metadata['max']}")
        accepted = describe_type(typ) + (" " + " and ".join(bounds) if bounds else "")
        help_text = field.metadata.get("help", "")
        lines.append(f"{key} = {default!r}  ({accepted})" + (f"  {help_text}" if help_text else ""))
    return lines
