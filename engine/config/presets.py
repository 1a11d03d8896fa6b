"""The named presets and configs as plain dicts (TOML/YAML), every value checked on the way in."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import fields, replace
from typing import Any

from engine.config.specs import (
    MEDIUM_DEPTHS,
    PAPER_DEPTHS,
    Config,
    GridSpec,
    ModelSpec,
    TrainSpec,
)
from engine.errors import SettingError, setting_error

PRESET_NAMES = ("coarse", "medium", "paper")


def preset(name: str) -> Config:
    """Return the named preset configuration.

    Parameters
    ----------
    name : {"coarse", "medium", "paper"}
        ``coarse`` is 5 degrees with 16 levels (CPU default), ``medium`` 2.5 degrees with
        24 levels, ``paper`` the reference 1 degree grid with 38 levels.
    """
    if name == "coarse":
        return Config()
    if name == "medium":
        return Config(
            grid=GridSpec("medium", 2.5, tuple(float(d) for d in MEDIUM_DEPTHS)),
            model=ModelSpec(relu_channels=16, tanh_channels=8, kernels=((6, 5, 3), (5, 5, 3), (3, 3, 3))),
        )
    if name == "paper":
        return Config(
            grid=GridSpec("paper", 1.0, PAPER_DEPTHS),
            model=ModelSpec(
                relu_channels=16,
                tanh_channels=8,
                n_stages=3,
                kernels=((8, 6, 4), (5, 5, 3), (3, 3, 3)),  # the reference architecture
                disc_channels=16,
                obs_inputs=("obs",),
                reduced_space=0,
                offset_patterns=0,
            ),
            train=TrainSpec(control_years=41, validation_years=5, adversarial_weight=0.1),
        )
    raise setting_error("preset", name, f"one of {', '.join(PRESET_NAMES)}")


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (lists instead of tuples) for TOML/YAML."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {
        section.name: {
            f.name: plain(getattr(getattr(config, section.name), f.name)) for f in fields(getattr(config, section.name))
        }
        for section in fields(config)
    }


def _unknown(where: str, names: set[str], known: list[str]) -> None:
    """A SettingError for a misspelt key or section: the nearest known name, else all of them."""
    if not names:
        return
    name = sorted(names)[0]
    near = difflib.get_close_matches(name, known, n=1)
    fix = f"did you mean {where}{near[0]}?" if near else f"the known ones are {', '.join(known)}"
    raise SettingError(f"unknown {'setting' if where else 'config section'} {where}{name}; {fix}")


def _section_from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    _unknown(f"{where}.", set(values) - {f.name for f in fields(cls)}, [f.name for f in fields(cls)])
    return cls(**values)  # the spec's __post_init__ checks and normalises every value


def config_from_dict(values: dict[str, Any], base: Config | None = None) -> Config:
    """Build a Config from a nested dict, starting from ``base`` (default: coarse preset).

    A top-level ``preset = "name"`` key picks the base. Unknown sections or keys, and values
    of the wrong type or out of range, raise a :class:`~engine.errors.SettingError` naming
    them, so a typo never passes silently.
    """
    if not isinstance(values, dict):
        raise setting_error("config", values, 'sections of settings such as [grid] and [train], or preset = "coarse"')
    values = dict(values)
    if "preset" in values:
        base = preset(values.pop("preset"))
    base = base or Config()
    names = [f.name for f in fields(Config)]
    _unknown("", set(values) - set(names), ["preset", *names])
    updates = {}
    for name, section_values in values.items():
        if not isinstance(section_values, dict):
            raise setting_error(name, section_values, f"a section [{name}] of settings, e.g. [{name}] seed = 1")
        current = dataclasses.asdict(getattr(base, name))
        current.update(section_values)
        updates[name] = _section_from_dict(type(getattr(base, name)), current, name)
    return replace(base, **updates)
