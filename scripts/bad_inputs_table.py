"""Try malformed configs and arguments on every verb and write the Markdown table of what
each one printed (issue 27): ``python3 scripts/bad_inputs_table.py [OUT.md]``.

Each case runs ``deepda ...`` in-process (``engine.cli.main``) in a scratch folder holding a
tiny year of truth, observations and an analysis, and must meet the contract: exit code 2,
one line on stderr, no traceback, nothing created or removed in the folder. The script exits
1 when any case does not.
"""

from __future__ import annotations

import contextlib
import io as text_io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import xarray as xr  # noqa: E402

from engine import cli, io  # noqa: E402
from engine.config import Config, GridSpec, ModelSpec, NetworkSpec, TrainSpec, WorldSpec  # noqa: E402
from engine.memory import machine_memory, size_text  # noqa: E402

TINY = Config(
    grid=GridSpec("tiny", 22.5, (10.0, 100.0, 500.0, 1500.0)),
    world=WorldSpec(n_modes=8),
    network=NetworkSpec(argo_floats_2007=300),
    model=ModelSpec(relu_channels=4, tanh_channels=2, n_stages=2, kernels=((3, 3, 3),), disc_channels=4,
                    reduced_space=8, offset_patterns=2),
    train=TrainSpec(control_years=3, validation_years=1, window=3, backprop_steps=2, steps=4, finetune_steps=2,
                    finetune_backprop_steps=3),
)  # fmt: skip

CONFIGS = {  # file name -> text; each is given to the verb in the case that names it
    "modes.toml": "[world]\nn_modes = 3.5\n",
    "no_platforms.toml": "[network]\nplatforms = []\n",
    "twice.toml": '[network]\nplatforms = ["argo", "argo"]\n',
    "neg_error.toml": '[network]\nerrors = [["argo", -0.2]]\n',
    "few_errors.toml": '[network]\nerrors = [["argo", 0.2]]\n',
    "batch.toml": "[train]\nbatch_size = 16\n",
    "ema.toml": "[train]\nema_decay = 1.0\n",
    "kelvin.toml": '[train]\nloss_units = "kelvin"\n',
    "efold.toml": "[train]\noffset_efold_m = [2000, 200]\n",
    "patience.toml": "[train]\npatience = 0\n",
    "stages.toml": "[model]\nn_stages = 9\n",
    "kernels.toml": "[model]\nkernels = [[3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]\n",
    "offsets.toml": "[model]\nreduced_space = 0\n",
    "name.toml": '[grid]\nname = ""\n',
    "nolevels.toml": "[grid]\ndepths = []\n",
    "deep.toml": "[grid]\ndepths = [5, 6000]\n",
    "lengths.toml": "[world]\nmax_length_km = 100\n",
    "four.toml": '[world]\nenso_period_years = "four"\n',
    "year0.toml": "[world]\ncontrol_start_year = 0\n",
    "seedlist.yaml": "world:\n  seed: [1]\n",
    "dupkey.toml": "[world]\nseed = 1\nseed = 2\n",
    "preset3.toml": "preset = 3\n",
    "json.json": '{"world": {"seed": 1}}\n',
    "modes1000.toml": "[world]\nn_modes = 1000\n",
    "paper_long.toml": 'preset = "paper"\n[world]\nn_modes = 1000\n[train]\ncontrol_years = 10000\n',
}


def cases(d: Path) -> list[list[str]]:
    """The commands; {d} is the scratch folder."""
    c = ["--config", f"{d}/tiny.toml"]
    obs, ana, world = f"{d}/obs.nc", f"{d}/analysis.nc", f"{d}/world.nc"
    out_nc, out_dir, out_pt = f"{d}/out.nc", f"{d}/scores", f"{d}/out.pt"
    uses = {
        "world": ["modes.toml", "name.toml", "nolevels.toml", "deep.toml", "lengths.toml", "four.toml",
                  "year0.toml", "seedlist.yaml", "dupkey.toml", "preset3.toml", "json.json"],
        "observe": ["no_platforms.toml", "twice.toml", "neg_error.toml", "few_errors.toml"],
        "train": ["batch.toml", "ema.toml", "kelvin.toml", "efold.toml", "patience.toml", "stages.toml",
                  "kernels.toml", "offsets.toml"],
    }  # fmt: skip
    out = {"world": ["--years", "1", "--out", out_nc], "observe": ["--counts"], "train": ["--out", out_pt]}
    runs = [[verb, "--config", f"{d}/{name}", *out[verb]] for verb, names in uses.items() for name in names]
    runs += [
        ["world", "--config", f"{d}/folder.toml", "--years", "1", "--out", out_nc],
        ["world", "--config", f"{d}/binary.toml", "--years", "1", "--out", out_nc],
        ["world", "--years", "0", "--out", out_nc],
        ["world", "--years", "1e3", "--out", out_nc],
        ["world", "--seed", "99999999999", "--out", out_nc],
        ["world", "--run", "historical", "--period", "2020-1990", "--out", out_nc],
        ["world", "--run", "historical", "--period", "1981-1990-2000", "--out", out_nc],
        ["world", "--config", f"{d}/modes1000.toml", "--years", "100000", "--out", out_nc],
        ["observe", "--counts", "--period", "2021"],
        ["observe", "--counts", "--period", "abc"],
        ["observe", "--period", "1975-1985", "--out", out_nc],
        ["observe", "--deny", "argo,argoo", "--out", out_nc],
        ["train", "--steps", "1.5", "--out", out_pt],
        ["train", "--steps", "100000000", "--out", out_pt],
        ["train", "--config", f"{d}/paper_long.toml", "--out", out_pt],
        ["assimilate", *c, "--method", "oi", "--obs", obs, "--members", "1001", "--out", out_nc],
        ["assimilate", *c, "--method", "oi", "--obs", obs, "--members", "two", "--out", out_nc],
        ["assimilate", *c, "--method", "oi", "--obs", obs, "--period", "1800-1801", "--out", out_nc],
        ["assimilate", *c, "--method", "oi", "--obs", obs, "--period", "2011", "--out", out_nc],
        ["assimilate", *c, "--method", "oi", "--obs", obs, "--period", "2009-2011", "--out", out_nc],
        ["assimilate", "--preset", "paper", "--method", "oi", "--obs", obs, "--members", "1000", "--out", out_nc],
        ["assimilate", "--model", f"{d}/no_ocean.pt", "--obs", obs, "--out", out_nc],
        ["assimilate", "--model", f"{d}/extra_section.pt", "--obs", obs, "--out", out_nc],
        ["calibrate", "--members", "1"],
        ["osse", "--period", "1970", "--out", out_dir],
        ["osse", "--members", "-1", "--out", out_dir],
        ["evaluate", *c, "--analysis", ana, f"{d}/analysis_other_grid.nc", "--truth", world, "--out", out_dir],
        ["evaluate", *c, "--analysis", obs, "--truth", world, "--out", out_dir],
        ["evaluate", *c, "--analysis", ana, "--truth", ana, "--out", out_dir],
        ["evaluate", *c, "--analysis", ana, "--truth", f"{d}/world_short.nc", "--out", out_dir],
        ["evaluate", *c, "--analysis", ana, "--truth", world, "--obs", world, "--out", out_dir],
        ["evaluate", *c, "--analysis", ana, "--truth", world, "--out", ana],
        ["evaluate", "--held-out", f"{d}/missing.pt", "--out", out_dir],
        ["evaluate", "--held-out", f"{d}/bad_config.pt", "--out", out_dir],
    ]
    return runs


def make_files(d: Path) -> None:
    """The tiny year (2010) of truth, observations and a climatology analysis, cut copies,
    the configs above and damaged copies of the shipped checkpoint."""
    io.write_config(TINY, d / "tiny.toml")
    c = ["--config", str(d / "tiny.toml")]
    with contextlib.redirect_stdout(text_io.StringIO()):
        assert cli.main(["world", *c, "--run", "historical", "--period", "2010", "--out", str(d / "world.nc")]) == 0
        assert cli.main(["observe", *c, "--period", "2010", "--out", str(d / "obs.nc")]) == 0
        argv = [
            "assimilate",
            *c,
            "--method",
            "climatology",
            "--obs",
            str(d / "obs.nc"),
            "--out",
            str(d / "analysis.nc"),
        ]
        assert cli.main(argv) == 0
    with xr.open_dataset(d / "analysis.nc") as ds:
        ds.isel(lat=slice(0, None, 2), lon=slice(0, None, 2)).to_netcdf(d / "analysis_other_grid.nc")
    with xr.open_dataset(d / "world.nc") as ds:
        ds.isel(time=slice(0, 30)).to_netcdf(d / "world_short.nc")
    for name, text in CONFIGS.items():
        (d / name).write_text(text)
    (d / "folder.toml").mkdir()
    (d / "binary.toml").write_bytes(bytes(range(128, 256)) * 4)
    shipped = torch.load(io.assets_dir() / "deepda_coarse.pt", weights_only=True)
    damaged = {
        "no_ocean.pt": {k: v for k, v in shipped.items() if k != "ocean"},
        "extra_section.pt": {**shipped, "optimizer": {}},
        "bad_config.pt": {**shipped, "config": {**shipped["config"], "grid": {**shipped["config"]["grid"], "resolution": 0}}},
    }  # fmt: skip
    for name, payload in damaged.items():
        torch.save(payload, d / name)


def run_case(argv: list[str], d: Path) -> tuple[int, str, bool]:
    """Exit code, the stderr text and whether the folder is unchanged."""
    before = sorted(p.name for p in d.rglob("*"))
    err, out = text_io.StringIO(), text_io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(argv)
        except BaseException as exc:  # a crash is a failed case, reported in the table
            code = f"crash: {type(exc).__name__}"
    return code, err.getvalue(), sorted(p.name for p in d.rglob("*")) == before


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "bad_inputs_config.md"
    rows, failed = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_files(d)
        for argv in cases(d):
            code, err, unchanged = run_case(argv, d)
            lines = err.strip().splitlines()
            ok = code == 2 and len(lines) == 1 and "Traceback" not in err and unchanged
            failed += not ok
            command = " ".join(["deepda", *argv]).replace(str(d), "D")
            message = (lines[0] if lines else "(nothing)").replace(str(d), "D").replace("|", "\\|")
            rows.append(f"| {len(rows) + 1} | `{command}` | {code} | {'yes' if ok else 'NO'} | {message} |")
        configs = "\n".join(f"| `{name}` | `{text.strip()!r}` |" for name, text in CONFIGS.items())
    text = (
        "# Malformed configs and arguments (issue 27)\n\n"
        f"Made by `python3 scripts/bad_inputs_table.py` on a machine with {size_text(machine_memory())} of memory. "
        "`D` is a scratch folder with one tiny year (2010) of truth `world.nc`, observations `obs.nc` and a "
        "climatology analysis `analysis.nc` (config `tiny.toml`), cut copies, damaged copies of the shipped "
        "checkpoint and the config files below. *Contract* is yes when the exit code is 2, stderr is one line "
        "with no traceback, and nothing in `D` was created or removed.\n\n"
        f"{len(rows) - failed} of {len(rows)} meet the contract.\n\n"
        "| # | command | exit | contract | message |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "## The config files\n\n| file | text |\n|---|---|\n" + configs + "\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}: {len(rows)} cases, {failed} not meeting the contract")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
