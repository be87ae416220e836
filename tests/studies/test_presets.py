"""Every registered study offers smoke, default and paper presets that resolve to valid configs,
and says how long its default and paper presets take (issue 10: paper presets state their wall time)."""

from __future__ import annotations

import pytest

from repdyn import registry
from repdyn.bench import config as cfg


@pytest.mark.parametrize("name", registry.names())
def test_study_offers_smoke_default_and_paper_presets_with_wall_times(name):
    study = registry.get(name)
    assert {"smoke", "default", "paper"} <= set(study.presets)
    assert {"default", "paper"} <= set(study.wall_times), "state the expected wall time of default and paper"
    assert set(study.wall_times) <= set(study.presets), "wall time given for a preset that does not exist"


@pytest.mark.parametrize("name", registry.names())
def test_every_preset_resolves_to_a_valid_config(name):
    study = registry.get(name)
    for preset, overrides in study.presets.items():
        values = dict(overrides)
        if values.get("data.dataset", "digits") != "digits":  # paper presets on MNIST / CIFAR-10 need the user's folder
            values["data.path"] = "/user/data"
        config = cfg.override(study.config(), values)
        assert study.arms(config), f"{name} --preset {preset} has no arms"
