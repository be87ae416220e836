"""Mixed precision, one switch for every study: a top-level config field `autocast` ("off" or "bf16").

A study whose paper trained in bf16 declares the field (`autocast: str = autocast_param()`) and runs
its forward passes inside `ctx.autocast()`; `repdyn run STUDY --autocast bf16` sets it, and is
refused for a study without it. Under bf16 autocast the matrix products run in bf16 while the
weights, their gradients and the optimizer state stay fp32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import fields
from typing import Any

import torch

from repdyn.bench.config import param
from repdyn.bench.errors import UserError

AUTOCAST_MODES = ("off", "bf16")


def autocast_param() -> Any:
    """The `autocast` config field of a study that offers bf16."""
    return param("off", choices=AUTOCAST_MODES, help="bf16: forward passes in bf16 autocast (weights stay fp32)")


def supports_autocast(config_cls: type) -> bool:
    """Whether a study's config class has the `autocast` field."""
    return any(f.name == "autocast" for f in fields(config_cls))


def check_autocast(study_name: str, config_cls: type, mode: str) -> None:
    """Refuse `--autocast MODE` for an unknown mode or a study without the switch."""
    if mode not in AUTOCAST_MODES:
        raise UserError(f"--autocast {mode!r}: expected one of {', '.join(AUTOCAST_MODES)}")
    if mode != "off" and not supports_autocast(config_cls):
        raise UserError(
            f"--autocast {mode}: {study_name} has no bf16 option (only studies whose paper trained in bf16 do)"
        )


def autocast(device: torch.device, mode: str) -> AbstractContextManager[Any]:
    """bf16 autocast on `device` for mode "bf16"; a no-op for "off"."""
    if mode == "off":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
