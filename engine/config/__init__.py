"""Explicit, frozen configuration: grid, model world, observing network, model, training,
assimilation.

Every function in the engine takes the piece of configuration it needs as an argument;
nothing reads a module global. ``specs`` holds the dataclasses, each with the table of its
fields' valid ranges checked when it is built (``rules``); ``presets`` the named bundles
(``coarse``, ``medium``, ``paper``) and the round trip through plain dicts for TOML or YAML
files (the file reading itself lives in ``engine.io``).
"""

from engine.config.cycling import ASSIMILATE_RULES, AssimilateSpec
from engine.config.presets import PRESET_NAMES, config_from_dict, config_to_dict, preset
from engine.config.realdata import LEARN_RULES, OBS_ERROR_RULES, LearnSpec, ObsErrorSpec
from engine.config.rules import SEED
from engine.config.specs import (
    COARSE_DEPTHS,
    GRID_RULES,
    MEDIUM_DEPTHS,
    MODEL_RULES,
    NETWORK_RULES,
    NETWORK_YEARS,
    OBS_INPUT_NAMES,
    ONI_YEARS,
    PAPER_DEPTHS,
    PLATFORM_NAMES,
    TRAIN_RULES,
    WORLD_RULES,
    Config,
    GridSpec,
    ModelSpec,
    NetworkSpec,
    TrainSpec,
    WorldSpec,
)

__all__ = [
    "ASSIMILATE_RULES",
    "COARSE_DEPTHS",
    "GRID_RULES",
    "LEARN_RULES",
    "MEDIUM_DEPTHS",
    "MODEL_RULES",
    "NETWORK_RULES",
    "NETWORK_YEARS",
    "OBS_ERROR_RULES",
    "OBS_INPUT_NAMES",
    "ONI_YEARS",
    "PAPER_DEPTHS",
    "PLATFORM_NAMES",
    "PRESET_NAMES",
    "SEED",
    "TRAIN_RULES",
    "WORLD_RULES",
    "AssimilateSpec",
    "Config",
    "GridSpec",
    "LearnSpec",
    "ModelSpec",
    "NetworkSpec",
    "ObsErrorSpec",
    "TrainSpec",
    "WorldSpec",
    "config_from_dict",
    "config_to_dict",
    "preset",
]
