"""Bad input as the user meets it: the command, and what it must print.

Every case runs a verb through ``engine.cli.main`` and asserts the contract: exit code 2,
one line on stderr naming the problem (and the valid range or the fix), no traceback, and
nothing created next to the inputs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import xarray as xr

from engine import cli, io, memory
from engine.config import GridSpec, config_to_dict
from tests.conftest import TINY


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def refused(argv: list[str], capsys, match: str, folder: Path) -> str:
    """Run ``deepda ARGV``; assert the contract and that ``match`` is in the one line."""
    before = _listing(folder)
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("deepda: error: "), err
    assert re.search(match, lines[0]), lines[0]
    assert _listing(folder) == before, "something was created"
    return lines[0]


# --- config files ------------------------------------------------------------------------

CONFIGS = [
    ('[world]\nsteps_per_year = "73"\n', r"world.steps_per_year = '73' .*1 to 365.*without quotes"),
    ("[world]\nseed = 1.5\n", r"world.seed = 1.5 .*whole number from 0 to 4294967295"),
    ("[world]\nseed = true\n", r"world.seed = True .*whole number"),
    ("[world]\nsteps_per_year = 0\n", r"world.steps_per_year = 0 .*1 to 365"),
    ("[world]\nn_modes = 2\n", r"world.n_modes = 2 .*3 to 1000"),
    ("[world]\nhistorical_start_year = 2020\nhistorical_end_year = 1990\n", r"historical_start_year = 2020.*at most"),
    ("[world]\nhistorical_start_year = 1800\n", r"historical_start_year = 1800 .*1950 to 2021"),
    ("[world]\neddy_variance_fraction = nan\n", r"eddy_variance_fraction = nan .*0 to 0.95"),
    ("[model]\nrelu_channels = -8\n", r"model.relu_channels = -8 .*1 to 1024"),
    ("[model]\nkernels = [[3, 3]]\n", r"model.kernels\[0\] = \[3, 3\]"),
    ('[model]\nobs_inputs = ["obs", "salinity"]\n', r"model.obs_inputs\[1\] = 'salinity' .*obs, innovation, error"),
    ("[grid]\nresolution = 0.25\n", r"grid.resolution = 0.25 .*0.5 to 90 degrees"),
    ("[grid]\nresolution = 7\n", r"grid.resolution = 7.0 .*divides 180"),
    ("[grid]\ndepths = [10, 5]\n", r"grid.depths = \[10.0, 5.0\] .*increase strictly"),
    ("[grid]\ndepths = [-5, 10]\n", r"grid.depths\[0\] = -5 .*0.5 to 5000 m"),
    ('[network]\ndeny = ["argoo"]\n', r"network.deny\[0\] = 'argoo' .*argo, xbt, ctd, mooring, sst"),
    ('[network]\ndeny = ["argo", "xbt", "ctd", "mooring", "sst"]\n', r"network.deny .*at least one"),
    ("[network]\nargo_floats_2007 = -100\n", r"network.argo_floats_2007 = -100 .*0 to 100000"),
    ("[network]\nxbt_bias = 1\n", r"network.xbt_bias = 1 .*true or false"),
    ("[network]\nsst_clear_fraction = 1.5\n", r"sst_clear_fraction = 1.5 .*0 to 1"),
    ("[train]\nsteps = -5\n", r"train.steps = -5 .*0 to 10000000"),
    ("[train]\nvalidation_years = 80\n", r"train.validation_years = 80 .*fewer than train.control_years"),
    ("[train]\nbackprop_steps = 20\n", r"train.backprop_steps = 20 .*at most train.window"),
    ("[train]\nlearning_rate = 0\n", r"train.learning_rate = 0 .*1e-08 to 1"),
    ("[train]\nnetwork_years = [1990, 1985]\n", r"train.network_years .*first <= last"),
    ("[train]\nstepz = 7\n", r"unknown setting train.stepz; did you mean train.steps\?"),
    ("[trian]\nsteps = 7\n", r"unknown config section trian; did you mean train\?"),
    ("world = 5\n", r"setting world = 5 is invalid: a section \[world\]"),
    ('preset = "fine"\n', r"setting preset = 'fine' .*coarse, medium, paper"),
    ("[grid\nname=", r"bad.toml"),
]


@pytest.mark.parametrize(("text", "message"), CONFIGS, ids=[m.split(" ")[0][:30] for _, m in CONFIGS])
def test_bad_config_values_are_refused_when_the_config_is_built(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    line = refused(["world", "--years", "1", "--config", config, "--out", tmp_path / "w.nc"], capsys, message, tmp_path)
    assert "bad.toml" in line


def test_yaml_configs_are_checked_alike(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("world:\n  steps_per_year: 1e3\n")  # YAML 1.1 reads 1e3 as a string
    refused(["observe", "--counts", "--config", config], capsys, r"steps_per_year = '1e3' .*without quotes", tmp_path)
    config.write_text("- a list\n- not sections\n")
    refused(["observe", "--counts", "--config", config], capsys, r"sections of settings", tmp_path)


@pytest.mark.parametrize("kind", ["folder", "binary", "unreadable"])
def test_config_files_that_cannot_be_read_are_one_line(tmp_path, capsys, kind):
    path = tmp_path / "run.toml"
    if kind == "folder":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(bytes(range(128, 256)) * 4)
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads every file")
        path.write_text("[world]\nseed = 1\n")
        path.chmod(0)
    message = {"folder": "is a folder", "binary": "is not a text file", "unreadable": "permission denied"}[kind]
    refused(["train", "--config", path, "--out", tmp_path / "m.pt"], capsys, message, tmp_path)


# --- arguments ---------------------------------------------------------------------------

ARGUMENTS = [
    (["world", "--years", "100000000"], r"--years: '100000000' must be a whole number from 1 to 100000"),
    (["world", "--years", "-3"], r"--years: '-3' must be a whole number from 1 to 100000"),
    (["world", "--seed", "1.5", "--years", "1"], r"--seed: '1.5' must be a whole number from 0 to 4294967295"),
    (["world", "--seed", "-1", "--years", "1"], r"--seed: '-1' must be a whole number"),
    (["world", "--run", "historical", "--period", "1800-1801"], r"outside the historical run \(1981-2020\)"),
    (["observe", "--period", "1800-1801"], r"--period 1800-1801 is outside the years the OSSE networks"),
    (["observe", "--period", "2019-2030"], r"choose years within 1981-2020"),
    (["observe", "--deny", "argoo"], r"--deny argoo: unknown platform; choose from argo, xbt"),
    (["observe", "--deny", "argo,xbt,ctd,mooring,sst"], r"network.deny .*leave at least one"),
    (["train", "--steps", "-5"], r"--steps: '-5' must be a whole number from 0 to 10000000"),
    (["osse", "--period", "1800-1801"], r"outside the years the OSSE networks"),
    (["osse", "--members", "0"], r"--members: '0' must be a whole number from 1 to 1000"),
    (["osse", "--methods", "deepda,enkf"], r"unknown method 'enkf'"),
]


@pytest.mark.parametrize(("argv", "message"), ARGUMENTS, ids=[" ".join(a[:3]) for a, _ in ARGUMENTS])
def test_bad_arguments_are_refused_before_anything_starts(tmp_path, capsys, argv, message):
    out = ["--out", tmp_path / ("out" if argv[0] == "osse" else "out.nc")]
    refused([*argv, *out], capsys, message, tmp_path)


def test_counts_outside_the_network_years_are_refused_not_invented(tmp_path, capsys):
    refused(
        ["observe", "--counts", "--period", "1800-1801"], capsys, r"1800-1801 is outside .* \(1981-2020\)", tmp_path
    )


def test_the_real_exit_code_and_stderr_of_the_console_script(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nsteps = -5\n")
    run = subprocess.run(
        [sys.executable, "-m", "engine.cli", "train", "--config", str(bad), "--out", str(tmp_path / "m.pt")],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        f"deepda: error: config file {bad}: setting train.steps = -5 is invalid: a whole number from 0 to 10000000"
    ]
    assert _listing(tmp_path) == ["bad.toml"]


# --- memory ------------------------------------------------------------------------------


def test_a_world_that_cannot_fit_is_refused_with_the_number(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "machine_memory", lambda: 8 * 2**30)
    line = refused(
        ["world", "--preset", "paper", "--years", "10000", "--out", tmp_path / "w.nc"],
        capsys, r"control run of 10000 years .* paper grid needs at least [\d.]+ GiB .* this machine has 8.0 GiB",
        tmp_path,
    )  # fmt: skip
    need = float(re.search(r"at least ([\d.]+) GiB", line).group(1))
    assert need > 8.0


def test_memory_estimates_are_lower_bounds_that_grow_with_the_request():
    shape = (16, 36, 72)
    small, large = memory.world_bytes(shape, 40, 730), memory.world_bytes(shape, 40, 7_300_000_000)
    assert 2 * 2**40 < large and small < 2**30  # the 2 TiB the issue saw; a 10-year coarse run (measured 0.5 GiB)
    assert memory.train_bytes(replace(TINY, train=replace(TINY.train, control_years=1000))) > memory.train_bytes(TINY)
    assert memory.size_text(1536) == "1.5 KiB" and memory.size_text(3 * 2**40) == "3.0 TiB"


# --- files of the pipeline: observations, analyses, truth, checkpoints ---------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One tiny year (2010): its config, truth, observations and a climatology analysis,
    plus copies cut to another grid or a shorter period."""
    folder = tmp_path_factory.mktemp("bad_input")
    config = folder / "tiny.toml"
    io.write_config(TINY, config)
    c = ["--config", str(config)]
    assert cli.main(["world", *c, "--run", "historical", "--period", "2010", "--out", str(folder / "world.nc")]) == 0
    assert cli.main(["observe", *c, "--period", "2010", "--out", str(folder / "obs.nc")]) == 0
    assert cli.main(["assimilate", *c, "--method", "climatology", "--obs", str(folder / "obs.nc"),
                     "--out", str(folder / "analysis.nc")]) == 0  # fmt: skip
    for name in ("world", "analysis"):
        with xr.open_dataset(folder / f"{name}.nc") as ds:
            ds.isel(lat=slice(0, None, 2), lon=slice(0, None, 2)).to_netcdf(folder / f"{name}_other_grid.nc")
            ds.isel(time=slice(0, 30)).to_netcdf(folder / f"{name}_short.nc")
    other = replace(TINY, world=replace(TINY.world, historical_start_year=1990, historical_end_year=2000))
    io.write_config(other, folder / "nineties.toml")
    return folder


def _evaluate(files: Path, out: Path, *args: object) -> list[object]:
    return ["evaluate", "--config", files / "tiny.toml", *args, "--out", out]


EVALUATE = [
    (
        ("--analysis", "analysis.nc", "analysis_other_grid.nc", "--truth", "world.nc"),
        r"analysis_other_grid.nc: analysis other_grid is on a 4x4x8 .* grid whose lat differs from the tiny",
    ),
    (
        ("--analysis", "analysis.nc", "analysis_short.nc", "--truth", "world.nc"),
        r"analysis short covers 2010-2010 \(30 steps\) and analysis analysis 2010-2010 \(73 steps\)",
    ),
    (("--analysis", "obs.nc", "--truth", "world.nc"), r"obs.nc: is an observation \(profile\) file, not an analysis"),
    (("--analysis", "world.nc", "--truth", "world.nc"), r"world.nc: is a world \(truth\) file, not an analysis"),
    (("--analysis", "analysis.nc", "--truth", "obs.nc"), r"obs.nc: is an observation \(profile\) file, not a world"),
    (("--analysis", "analysis.nc", "--truth", "analysis.nc"), r"analysis.nc: is an analysis file, not a world"),
    (("--analysis", "analysis.nc", "--truth", "world_other_grid.nc"), r"world_other_grid.nc: the truth is on a 4x4x8"),
    (
        ("--analysis", "analysis.nc", "--truth", "world_short.nc"),
        r"the truth covers 2010-2010 \(30 steps\), not every step of the analyses, 2010-2010 \(73 steps\)",
    ),
    (
        ("--analysis", "analysis.nc", "--truth", "world.nc", "--obs", "analysis.nc"),
        r"analysis.nc: is an analysis file, not observations",
    ),
    (("--analysis", "analysis.nc", "--truth", "missing.nc"), r"missing.nc does not exist"),
]


@pytest.mark.parametrize(("args", "message"), EVALUATE, ids=[" ".join(a[:4]) for a, _ in EVALUATE])
def test_evaluate_checks_its_inputs_before_it_creates_anything(files, tmp_path, capsys, args, message):
    args = [files / a if a.endswith(".nc") else a for a in args]
    refused(_evaluate(files, tmp_path / "scores", *args), capsys, message, tmp_path)
    assert not (tmp_path / "scores").exists()


def test_evaluate_without_truth_outside_the_historical_run(files, tmp_path, capsys):
    argv = ["evaluate", "--config", files / "nineties.toml", "--analysis", files / "analysis.nc"]
    refused(
        [*argv, "--out", tmp_path / "s"],
        capsys,
        r"analyses cover 2010-2010 .* outside the historical run 1990-2000",
        tmp_path,
    )


def test_evaluate_on_the_default_grid_names_the_grid(files, tmp_path, capsys):
    argv = ["evaluate", "--analysis", files / "analysis.nc", "--truth", files / "world.nc", "--out", tmp_path / "s"]
    refused(argv, capsys, r"on a 4x8x16 .* grid whose depth differs from the coarse grid 16x36x72", tmp_path)


@pytest.mark.parametrize(
    ("period", "message"),
    [
        (
            "1800-1801",
            r"no observations in 1800-1801 of the period 1800-1801; choose a period within the observed years 2010",
        ),
        ("2011", r"no observations in 2011 of the period 2011-2011"),
        ("2008-2010", r"no observations in 2008-2009 of the period 2008-2010"),
    ],
)
def test_assimilating_years_without_observations_is_refused(files, tmp_path, capsys, period, message):
    argv = ["assimilate", "--config", files / "tiny.toml", "--method", "climatology", "--obs", files / "obs.nc"]
    refused([*argv, "--period", period, "--out", tmp_path / "a.nc"], capsys, message, tmp_path)


def test_assimilation_and_training_that_cannot_fit_are_refused(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "machine_memory", lambda: 2**20)
    argv = ["assimilate", "--config", files / "tiny.toml", "--method", "oi", "--obs", files / "obs.nc"]
    refused([*argv, "--members", "1000", "--out", tmp_path / "a.nc"], capsys,
            r"assimilation with 1000 members on the tiny grid needs at least .* MiB .* 1.0 MiB; use fewer --members", tmp_path)  # fmt: skip
    refused(["train", "--config", files / "tiny.toml", "--out", tmp_path / "m.pt"], capsys,
            r"training on the tiny grid \(3 control years\) needs at least .* MiB", tmp_path)  # fmt: skip


@pytest.fixture(scope="module")
def shipped_payload():
    return torch.load(io.assets_dir() / "deepda_coarse.pt", weights_only=True)


CHECKPOINTS = [
    (lambda p: p.pop("normalizer"), r"lacks its normalizer; the file is damaged"),
    (lambda p: p.pop("config"), r"lacks its config"),
    (lambda p: p.update(optimiser={}), r"unknown section\(s\) optimiser"),
    (lambda p: p.update(provenance="x"), r"its provenance is not a dict"),
    (lambda p: p["config"].update(tuning={}), r"holds an invalid config \(unknown config section tuning"),
    (lambda p: p["config"]["model"].update(relu_channels=-1), r"invalid config \(setting model.relu_channels = -1"),
    (lambda p: p["normalizer"].clear(), r"its normalizer has no per-level scale"),
]


@pytest.mark.parametrize(("damage", "message"), CHECKPOINTS, ids=[m[:24] for _, m in CHECKPOINTS])
def test_damaged_checkpoints_are_one_line(files, tmp_path, capsys, shipped_payload, damage, message):
    payload = {k: (dict(v) if isinstance(v, dict) else v) for k, v in shipped_payload.items()}
    payload["config"] = {k: dict(v) for k, v in payload["config"].items()}
    damage(payload)
    model = tmp_path / "model.pt"
    torch.save(payload, model)
    refused(["evaluate", "--held-out", model, "--out", tmp_path / "scores"], capsys, message, tmp_path)
    argv = ["assimilate", "--model", model, "--obs", files / "obs.nc", "--out", tmp_path / "a.nc"]
    refused(argv, capsys, message, tmp_path)


def test_config_rules_cover_every_field_and_the_platform_lists_agree():
    from engine import config
    from engine.nn.generator import OBS_INPUTS
    from engine.observe.profiles import PLATFORMS

    assert config.PLATFORM_NAMES == PLATFORMS[:-1] and config.OBS_INPUT_NAMES == OBS_INPUTS
    for spec, rules in [(config.GridSpec, config.GRID_RULES), (config.WorldSpec, config.WORLD_RULES),
                        (config.NetworkSpec, config.NETWORK_RULES), (config.ModelSpec, config.MODEL_RULES),
                        (config.TrainSpec, config.TRAIN_RULES), (config.AssimilateSpec, config.ASSIMILATE_RULES)]:  # fmt: skip
        hints = {f: t for f, t in spec.__annotations__.items()}
        numeric = [f for f, t in hints.items() if "int" in t or "float" in t]
        assert set(rules) <= set(hints), spec
        assert [f for f in numeric if f not in rules] == [], f"{spec.__name__}: numeric fields without bounds"
    # the checked values are normalised, so a spec from a file equals the preset it came from
    assert GridSpec("g", 5, [5, 10]) == GridSpec("g", 5.0, (5.0, 10.0))
    assert config.config_from_dict(config_to_dict(config.preset("paper"))) == config.preset("paper")
