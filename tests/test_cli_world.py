"""`deepda world`: CF-1.8 output that xarray and cdo read, and one-line errors with exit 2."""

import shutil
import subprocess

import numpy as np
import pytest
import xarray as xr

from engine import cli
from engine.world.synthetic import ModelWorld


def test_control_world_file_is_cf_and_keeps_the_levitus_mean(tmp_path, coarse_grid, geography):
    out = tmp_path / "world.nc"
    assert cli.main(["world", "--preset", "coarse", "--run", "control", "--years", "20", "--out", str(out)]) == 0
    ds = xr.open_dataset(out, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    assert ds.attrs["Conventions"] == "CF-1.8" and "deepda world" in ds.attrs["history"]
    thetao = ds["thetao"]
    assert thetao.dims == ("time", "depth", "lat", "lon") and ds.sizes["time"] == 20 * 73
    assert thetao.attrs["units"] == "degC" and thetao.attrs["standard_name"] == "sea_water_potential_temperature"
    assert ds["depth"].attrs["positive"] == "down" and ds["depth"].attrs["units"] == "m"
    assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["units"] == "degrees_east"
    assert ds["time"].dt.calendar == "noleap"
    assert np.isnan(thetao.isel(time=0).values[~coarse_grid.ocean]).all()
    # time mean on the equator at 180E within 1 degC of Levitus (four 1-degree cells around it)
    mean = thetao.mean("time")
    levitus = geography["thetao_clim"].sel(lat=[-0.5, 0.5], lon=[179.5, 180.5]).mean(("lat", "lon"))
    for depth in (5.0, 100.0, 200.0, 500.0):
        model = float(mean.interp(lat=0.0, lon=180.0).interp(depth=depth))
        assert abs(model - float(levitus.interp(source_depth=depth))) < 1.0, depth


@pytest.mark.skipif(shutil.which("cdo") is None, reason="cdo not installed (CI installs it)")
def test_cdo_reads_names_units_levels_and_dates(tmp_path):
    out = tmp_path / "hist.nc"
    assert cli.main(["world", "--run", "historical", "--period", "1991-1991", "--out", str(out)]) == 0

    def cdo(*args):
        return subprocess.run(["cdo", "-s", *args, str(out)], capture_output=True, text=True, check=True).stdout

    assert "thetao" in cdo("showname").split()
    assert cdo("ntime").strip() == "73"
    levels = [float(v) for v in cdo("showlevel", "-selname,thetao").split()]
    assert levels[0] == 5.0 and levels[-1] == 2000.0
    assert cdo("showdate").split()[0] == "1991-01-03"
    fldmean = subprocess.run(
        ["cdo", "-s", "outputf,%.3f", "-fldmean", "-sellevel,5", "-seltimestep,1", "-selname,thetao", str(out)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert 10.0 < float(fldmean.split()[0]) < 25.0  # a global mean SST, so units and missing values are right


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--years", "0"], "--years: '0' must be a whole number from 1 to 100000"),
        (["--run", "historical", "--period", "1900-1950"], "outside the historical run"),
        (["--run", "historical", "--period", "abc"], "is not YEAR or YEAR-YEAR"),
        (["--run", "historical", "--period", "2000-1990"], "FIRST <= LAST"),
        (["--period", "1990-1991"], "--period is for --run historical"),
        (["--run", "historical", "--years", "3"], "--years is for --run control"),
        (["--preset", "fine"], "invalid choice"),
        (["--years", "ten"], "--years: 'ten' must be a whole number"),
        (["--config", "missing.toml"], "does not exist"),
    ],
)
def test_bad_arguments_are_one_line_exit_2_and_no_file(tmp_path, capsys, args, message):
    out = tmp_path / "w.nc"
    assert cli.main(["world", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_and_missing_out(tmp_path, capsys):
    assert cli.main(["world", "--years", "1", "--out", str(tmp_path / "no" / "such" / "w.nc")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["world", "--years", "1"]) == 2
    assert "--out" in capsys.readouterr().err


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    original = ModelWorld.dataset

    def interrupt_late(self, start, stop):
        if start > 0:
            raise KeyboardInterrupt
        return original(self, start, stop)

    monkeypatch.setattr(ModelWorld, "dataset", interrupt_late)
    assert cli.main(["world", "--years", "6", "--out", str(tmp_path / "w.nc")]) == 130  # two chunks
    assert list(tmp_path.iterdir()) == []
    assert "interrupted" in capsys.readouterr().err
