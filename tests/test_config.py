from dataclasses import replace

import pytest

from engine import io
from engine.config import PRESET_NAMES, GridSpec, config_from_dict, config_to_dict, preset


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_presets_have_the_documented_grids(name):
    grid = preset(name).grid
    expected = {"coarse": (16, 36, 72), "medium": (24, 72, 144), "paper": (38, 180, 360)}[name]
    assert grid.shape == expected
    assert grid.depths[0] == 5.0 and grid.depths[-1] == 2000.0


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="coarse, medium, paper"):
        preset("fine")


def test_gridspec_rejects_bad_resolution_and_depths():
    with pytest.raises(ValueError, match="divides 180"):
        GridSpec("x", 7.0)
    with pytest.raises(ValueError, match="increase strictly"):
        GridSpec("x", 5.0, (10.0, 5.0))


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_config_file_round_trip(tmp_path, suffix):
    config = preset("medium")
    config = replace(config, world=replace(config.world, seed=42, n_modes=12))
    path = tmp_path / f"run{suffix}"
    io.write_config(config, path)
    assert io.read_config(path) == config


def test_config_from_dict_overrides_one_key_and_rejects_typos():
    config = config_from_dict({"preset": "paper", "train": {"steps": 7}})
    assert config.train.steps == 7 and config.grid.name == "paper"
    with pytest.raises(ValueError, match="stepz"):
        config_from_dict({"train": {"stepz": 7}})
    with pytest.raises(ValueError, match="trian"):
        config_from_dict({"trian": {}})
    assert config_from_dict(config_to_dict(preset("coarse"))) == preset("coarse")


def test_bad_config_file_is_one_line_input_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid\nname=")
    with pytest.raises(io.InputError) as err:
        io.read_config(bad)
    assert "\n" not in str(err.value) and "bad.toml" in str(err.value)
    with pytest.raises(io.InputError, match="does not exist"):
        io.read_config(tmp_path / "missing.toml")


def test_train_batch_size_and_loss_units_are_checked(tmp_path):
    from engine.config import TrainSpec

    assert TrainSpec(chains=4, batch_size=4).batch_size == 4
    for size in (0, 5):
        with pytest.raises(ValueError, match=r"train.batch_size = \d is invalid.*(1 to 1024|1 to train.chains)"):
            TrainSpec(chains=4, batch_size=size)
    with pytest.raises(ValueError, match="loss_units = 'kelvin' is invalid: one of network, degC"):
        TrainSpec(loss_units="kelvin")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch_size = 16\n")
    with pytest.raises(io.InputError, match="bad.toml.*raise train.chains"):
        io.read_config(bad)


def test_train_network_years_are_checked(tmp_path):
    from engine.config import TrainSpec

    assert TrainSpec(network_years=(1981, 1999)).network_years == (1981, 1999)
    for years in ((1999, 1981), (1970, 1990), (2000, 2030), (1990,), (1981, 1990, 2000)):
        with pytest.raises(ValueError, match=r"train.network_years.* is invalid: .*1981.*2020"):
            TrainSpec(network_years=years)
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nnetwork_years = [1990, 1985]\n")
    with pytest.raises(io.InputError, match="bad.toml.*network_years"):
        io.read_config(bad)


def test_offset_patterns_need_a_reduced_space(tmp_path):
    from engine.config import ModelSpec

    assert ModelSpec(reduced_space=0, offset_patterns=0).offset_patterns == 0  # the reference: neither
    with pytest.raises(ValueError, match="offset_patterns = 0 or reduced_space > 0"):
        ModelSpec(reduced_space=0)
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nreduced_space = 0\n")
    with pytest.raises(io.InputError, match="bad.toml.*offset_patterns"):
        io.read_config(bad)
