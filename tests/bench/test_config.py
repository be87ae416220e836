"""Config overrides: typed parsing, bounds, unknown keys, sweeps, TOML; errors name the key."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from repdyn.bench import config as cfg
from repdyn.bench.errors import ConfigError, UserError


@dataclass(frozen=True)
class Inner:
    depth: int = cfg.param(4, min=1, help="layers")
    rate: float = cfg.param(0.5, min=0.0, max=1.0)
    kind: Literal["relu", "tanh"] = "relu"
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None

    def validate(self) -> None:
        if self.kind == "tanh" and self.depth > 10:
            raise ConfigError("depth", "tanh nets are limited to depth 10")


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    flag: bool = True
    name: str = "x"


def test_typed_overrides_by_dotted_key():
    c = cfg.override(Outer(), {"inner.depth": "12", "inner.rate": "0.25", "flag": "false", "inner.sizes": "[3,4,5]", "inner.limit": "7", "name": "y"})
    assert c.inner == Inner(depth=12, rate=0.25, sizes=(3, 4, 5), limit=7)
    assert (c.flag, c.name) == (False, "y")
    assert cfg.override(c, {"inner.limit": "none"}).inner.limit is None
    assert cfg.override(Outer(), {"inner.depth": "2e4"}).inner.depth == 20000


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("inner.depht", "3", "inner.depht: unknown key"),
        ("inner.depth", "abc", "inner.depth: got 'abc', expected an integer"),
        ("inner.depth", "2.5", "inner.depth: got '2.5', expected an integer"),
        ("inner.depth", "0", "inner.depth: got 0, expected a value >= 1"),
        ("inner.rate", "1.5", "inner.rate: got 1.5, expected a value <= 1.0"),
        ("inner.rate", "nan", "inner.rate: got 'nan', expected a number"),
        ("inner.kind", "gelu", "inner.kind: got 'gelu', expected one of relu, tanh"),
        ("flag", "maybe", "flag: got 'maybe', expected true or false"),
    ],
)
def test_bad_values_name_the_key_and_what_it_accepts(key, value, message):
    with pytest.raises(ConfigError) as err:
        cfg.override(Outer(), {key: value})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_cross_field_validation_is_prefixed():
    with pytest.raises(ConfigError, match=r"^inner\.depth: tanh nets are limited"):
        cfg.override(Outer(), {"inner.kind": "tanh", "inner.depth": "11"})
    # Intermediate stages may be inconsistent; only the final config is validated.
    staged = cfg.override(Outer(), {"inner.kind": "tanh", "inner.depth": "11"}, check=False)
    assert cfg.override(staged, {"inner.depth": "5"}).inner.depth == 5


def test_typed_values_from_toml_or_presets_are_checked():
    assert cfg.override(Outer(), {"inner.rate": 1}).inner.rate == 1.0
    with pytest.raises(ConfigError, match="inner.depth: got 3.5"):
        cfg.override(Outer(), {"inner.depth": 3.5})
    with pytest.raises(ConfigError, match="flag: got 1"):
        cfg.override(Outer(), {"flag": 1})


def test_sweep_expansion_is_a_cartesian_product():
    settings = cfg.expand_sweep(["inner.depth=4,8", "inner.sizes=[1,2],[3]", "name=a"])
    assert settings == [
        {"inner.depth": "4", "inner.sizes": "[1,2]", "name": "a"},
        {"inner.depth": "4", "inner.sizes": "[3]", "name": "a"},
        {"inner.depth": "8", "inner.sizes": "[1,2]", "name": "a"},
        {"inner.depth": "8", "inner.sizes": "[3]", "name": "a"},
    ]
    assert cfg.expand_sweep([]) == [{}]
    with pytest.raises(UserError, match="expected key=value"):
        cfg.expand_sweep(["depth"])


def test_toml_round_trip_and_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('flag = false\n[inner]\ndepth = 6\nsizes = [7, 8]\n')
    c = cfg.override(Outer(), cfg.load_toml(path))
    assert c.inner.depth == 6 and c.inner.sizes == (7, 8) and c.flag is False
    assert cfg.from_dict(Outer, cfg.to_dict(c)) == c
    bad = tmp_path / "bad.toml"
    bad.write_text("depth = = 3")
    with pytest.raises(UserError, match="not valid TOML"):
        cfg.load_toml(bad)
    with pytest.raises(UserError, match="no such file"):
        cfg.load_toml(tmp_path / "missing.toml")


def test_help_lines_list_every_key():
    lines = cfg.help_lines(Outer)
    assert any(line.startswith("inner.depth = 4  (an integer >= 1)  layers") for line in lines)
    assert len(lines) == 7
