"""Fraternal twins and several worlds: training on worlds A and B, judging on another world's truth."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from engine import cli, io
from engine.config import WorldSpec
from engine.world.identity import describe_world, same_world, training_worlds, twin_kind, worlds_from_text
from tests.conftest import TINY

WORLD_B = WorldSpec(name="B", seed=9, n_modes=6, enso_period_years=3.0, eddy_variance_fraction=0.35)


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory):
    """The tiny config (world A), a config of another world B, and a model trained on A and B."""
    folder = tmp_path_factory.mktemp("twins")
    io.write_config(TINY, folder / "tiny.toml")
    io.write_config(replace(TINY, world=WORLD_B), folder / "world_b.toml")
    args = ["train", "--config", str(folder / "tiny.toml"), "--worlds", str(folder / "world_b.toml")]
    assert cli.main([*args, "--out", str(folder / "ab.pt"), "--steps", "2"]) == 0
    return folder


def test_same_world_ignores_names_and_years_but_not_how_it_is_built():
    a = WorldSpec()
    assert same_world(a, replace(a, name="other", historical_start_year=1990))
    assert not same_world(a, replace(a, seed=2)) and not same_world(a, replace(a, n_modes=30))
    assert twin_kind(a, [WORLD_B, replace(a, name="A2")]) == "identical"
    assert twin_kind(WORLD_B, [a]) == "fraternal"
    assert "world B (seed 9, 6 modes" in describe_world(WORLD_B)


def test_a_two_world_training_draws_windows_from_both(tiny_grid):
    """Chains are drawn from both worlds' control runs, a window's truth is its own world's,
    and validation holds both worlds' windows."""
    from engine.train.samples import TrainingSamples

    samples = TrainingSamples.from_config(TINY, tiny_grid, [WORLD_B])
    assert [s.name for s in samples.world_specs] == ["A", "B"]
    rng = np.random.default_rng(0)
    chains = [samples.new_chain(rng) for _ in range(40)]
    worlds = [c.world for c in chains]
    assert set(worlds) == {0, 1} and 10 < sum(worlds) < 30  # evenly, by chance
    for chain in (next(c for c in chains if c.world == k) for k in (0, 1)):
        window = samples.chain_window(chain, 2, rng)
        own = samples.worlds[chain.world].anomaly(chain.start, chain.start + 2) + chain.offset.numpy()[None]
        other = samples.worlds[1 - chain.world].anomaly(chain.start, chain.start + 2) + chain.offset.numpy()[None]
        got = window.truth[:, 0, 0].numpy()
        np.testing.assert_allclose(got, samples.normalizer.encode(own), atol=1e-5)
        assert not np.allclose(got, samples.normalizer.encode(other), atol=1e-3)
    assert len(samples.validation_windows()) == 4  # two eras of each world
    assert "world A (seed 1), world B (seed 9)" in samples.description
    # a chain saved and restored keeps its world; one saved before worlds existed is world A's
    chain = next(c for c in chains if c.world == 1)
    assert type(chain).from_dict(chain.to_dict()).world == 1
    old = {k: v for k, v in chain.to_dict().items() if k != "world"}
    assert type(chain).from_dict(old).world == 0


def test_pooled_eofs_span_both_worlds(tiny_grid):
    """The reduced space's basis from the pooled anomalies explains world B's variance
    better than world A's basis alone does."""
    from engine.train.eof import project_on_basis
    from engine.train.samples import TrainingSamples

    alone = TrainingSamples.from_config(TINY, tiny_grid)
    pooled = TrainingSamples.from_config(TINY, tiny_grid, [WORLD_B])
    b = pooled.normalizer.encode(pooled.worlds[1].anomaly(0, 73))
    residual = {}
    for name, samples in (("alone", alone), ("pooled", pooled)):
        patterns = samples.eof_basis(4)[0].numpy()
        residual[name] = float((project_on_basis(b, tiny_grid.volume, patterns)[1] ** 2).mean())
    assert residual["pooled"] < residual["alone"]


def test_the_checkpoint_names_its_training_worlds(twin_dir):
    from engine.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(twin_dir / "ab.pt")
    worlds = training_worlds(ckpt.config.world, ckpt.provenance)
    assert [w.name for w in worlds] == ["A", "B"] and same_world(worlds[1], WORLD_B)
    assert ckpt.config.train.worlds == (str(twin_dir / "world_b.toml"),)
    assert worlds_from_text(ckpt.provenance["training_worlds"])[0] == TINY.world


def test_a_fraternal_osse_names_both_worlds_and_its_filter_knows_the_truths(twin_dir, tmp_path):
    """The truth is world C's historical run, the summary says so and names A+B as DeepDA's
    training, and the Kalman filter is the one built in world C."""
    from engine.da.reanalysis import assimilate_to_file
    from engine.osse import historical_world

    world_c = WorldSpec(name="C", seed=13, n_modes=5, enso_nino34_std=0.6)
    io.write_config(replace(TINY, world=world_c), tmp_path / "world_c.toml")
    out = tmp_path / "osse"
    args = ["osse", "--config", str(twin_dir / "tiny.toml"), "--truth-config", str(tmp_path / "world_c.toml")]
    args += ["--period", "2010", "--model", str(twin_dir / "ab.pt"), "--methods", "deepda,oi,kf", "--out", str(out)]
    assert cli.main(args) == 0
    text = (out / "summary.md").read_text()
    assert "- truth: world C (seed 13" in text and "- deepda: trained on world A (seed 1" in text
    assert "world B (seed 9" in text and "a fraternal twin" in text and "knows the modes of world C" in text
    table = pd.read_csv(out / "summary.csv")
    assert set(table["truth"]) == {"C"}
    assert dict(zip(table["method"], table["trained_on"].fillna(""), strict=False)) == {
        "deepda": "A+B", "oi": "", "kf": "C (its modes)",
    }  # fmt: skip
    attrs = xr.open_dataset(out / "metrics.nc").attrs
    assert attrs["truth_world"].startswith("world C") and "fraternal" in attrs["deepda_trained_on"]
    # the truth is world C's historical run
    grid = io.load_grid(TINY.grid)
    truth = xr.open_dataset(out / "world.nc")["thetao"]
    config_c = replace(TINY, world=world_c)
    expected = historical_world(config_c, grid, (2010, 2010)).anomaly(0, 3)
    from engine.osse import truth_anomaly

    got = truth_anomaly(truth.to_dataset().isel(time=slice(0, 3)), grid, 73).values
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(expected * grid.ocean), atol=1e-4)
    # its KF analysis is the filter of world C, not of the training config's world A
    kf = xr.open_dataset(out / "analysis_kf.nc")["thetao_anomaly"].isel(time=slice(0, 5)).values
    for name, config in (("C", config_c), ("A", TINY)):
        path = tmp_path / f"kf_{name}.nc"
        assimilate_to_file("kf", out / "obs.nc", path, period=(2010, 2010), config=config)
        mine = xr.open_dataset(path)["thetao_anomaly"].isel(time=slice(0, 5)).values
        assert np.allclose(np.nan_to_num(mine), np.nan_to_num(kf), atol=1e-5) == (name == "C")
    # the folder holds world C's truth: a rerun with world A's refuses to score against it
    again = ["osse", "--config", str(twin_dir / "tiny.toml"), "--period", "2010", "--methods", "oi", "--out", str(out)]
    assert cli.main(again) == 2


def test_an_identical_twin_osse_says_so(twin_dir, tmp_path):
    out = tmp_path / "osse"
    args = ["osse", "--config", str(twin_dir / "tiny.toml"), "--period", "2010", "--methods", "deepda"]
    assert cli.main([*args, "--model", str(twin_dir / "ab.pt"), "--out", str(out)]) == 0
    text = (out / "summary.md").read_text()
    assert "- truth: world A (seed 1" in text and "an identical twin" in text


def test_worlds_that_cannot_join_are_one_line(twin_dir, tmp_path, capsys):
    monthly = tmp_path / "monthly.toml"
    io.write_config(replace(TINY, world=replace(WORLD_B, steps_per_year=12)), monthly)
    same_name = tmp_path / "same_name.toml"
    io.write_config(replace(TINY, world=replace(WORLD_B, name="A")), same_name)
    base = ["--config", str(twin_dir / "tiny.toml")]
    cases = [
        (["osse", *base, "--truth-config", str(monthly), "--out", str(tmp_path / "o")], "12 steps a year"),
        (
            ["osse", *base, "--truth-config", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")],
            "does not exist",
        ),
        (["train", *base, "--worlds", str(monthly), "--out", str(tmp_path / "m.pt")], "12 steps a year"),
        (["train", *base, "--worlds", str(same_name), "--out", str(tmp_path / "m.pt")], "name of its own"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert cli.main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.pt").exists()


def test_twins_table_gives_each_models_rmse_and_ratios_by_era(tmp_path, capsys):
    """scripts/twins_table.py: 0-700 m means of the global RMSE rows, DeepDA over OI and KF."""
    from scripts import twins_table

    levels = {"5 m": 1.0, "700 m": 2.0, "2000 m": 9.0}  # 2000 m is below the layer
    rows = []
    for method, scale in (("deepda", 1.0), ("oi", 2.0), ("kf", 0.5)):
        for era, factor in (("1981-1999", 2.0), ("2000-2020", 1.0)):
            values = {k: v * scale * factor for k, v in levels.items()}
            rows.append({"metric": "rmse", "method": method, "region": "global", "era": era, **values})
            rows.append({"metric": "rmse", "method": method, "region": "tropics", "era": era, **levels})
    table = pd.DataFrame(rows).assign(truth="C", trained_on=lambda t: t["method"].map(lambda m: dict(
        deepda="A+B", kf="C (its modes)").get(m, "")))  # fmt: skip
    (tmp_path / "osse").mkdir()
    table.to_csv(tmp_path / "osse" / "summary.csv", index=False)
    assert twins_table.main([str(tmp_path / "osse"), "--out", str(tmp_path / "t.csv")]) == 0
    assert (
        "| A+B | C | 3.000 / 1.500 | 6.000 / 3.000 | 1.500 / 0.750 | 0.50 / 0.50 | 2.00 / 2.00 |"
        in capsys.readouterr().out
    )
    assert pd.read_csv(tmp_path / "t.csv")["deepda_over_kf_argo"].iloc[0] == pytest.approx(2.0)
    assert twins_table.main([str(tmp_path / "none")]) == 2


def test_drawn_worlds_are_reproducible_valid_and_inside_their_ranges():
    from engine.world.draws import WORLD_RANGES, draw_worlds

    drawn = draw_worlds(WorldSpec(), 12, seed=3)
    assert drawn == draw_worlds(WorldSpec(), 12, seed=3) and drawn != draw_worlds(WorldSpec(), 12, seed=4)
    assert [w.name for w in drawn[:2]] == ["A-d1", "A-d2"] and len({w.seed for w in drawn}) == 12
    for field, (low, high) in WORLD_RANGES.items():
        values = [getattr(w, field) for w in drawn]
        assert all(low - 0.5 <= v <= high + 0.5 for v in values), field
        assert len(set(values)) > 6, field  # drawn, not fixed
    assert all(not same_world(w, WorldSpec()) for w in drawn)
    assert all(w.steps_per_year == 73 and w.surface_warming_per_decade == 0.1 for w in drawn)


def test_a_training_on_drawn_worlds_validates_on_the_first_ones_only(tiny_grid):
    from engine.train.samples import TrainingSamples

    config = replace(TINY, train=replace(TINY.train, drawn_worlds=3, validation_drawn=1))
    samples = TrainingSamples.from_config(config, tiny_grid, [WORLD_B])
    names = [s.name for s in samples.world_specs]
    assert names[:2] == ["A", "B"] and len(names) == 5 and all(n.startswith("A-d") for n in names[2:])
    assert len(samples.validation_windows()) == 2 * 3  # two eras of A, B and A-d1
    assert samples.validated == 3
    chains = [samples.new_chain(np.random.default_rng(k)) for k in range(60)]
    assert {c.world for c in chains} == set(range(5))  # every world trains
    assert "validated on the first 3" in samples.description
