"""Matplotlib figures of an OSSE metrics Dataset (built here, written by ``engine.io``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import cmocean  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def rmse_by_depth(ds: xr.Dataset, methods: list[str]) -> Figure:
    """RMSE profiles: each method (solid), its background (dashed), the observations."""
    fig, ax = plt.subplots(figsize=(5, 6))
    depth = ds["depth"].values
    for name in methods:
        line = ax.plot(ds[f"rmse_depth_{name}"], depth, label=name)[0]
        ax.plot(ds[f"rmse_background_depth_{name}"], depth, ls="--", color=line.get_color(), lw=0.8)
        if f"rmse_at_obs_depth_{name}" in ds:
            ax.plot(ds[f"rmse_at_obs_depth_{name}"], depth, ls=":", color=line.get_color(), lw=0.8)
    if "rmse_depth_observations" in ds:
        ax.plot(ds["rmse_depth_observations"], depth, "k:", lw=2, label="observations")
    title = "RMSE by depth (dashed: background, dotted: at observed cells)"
    ax.set(yscale="symlog", xlabel="RMSE (degC)", ylabel="depth (m)", title=title)
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    return fig


def rmse_over_time(ds: xr.Dataset, methods: list[str]) -> Figure:
    """Volume-weighted 0-700 m RMSE at each step."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for name in methods:
        ds[f"rmse_time_{name}"].plot(ax=ax, label=name, lw=0.8)
    ax.set(ylabel="RMSE 0-700 m (degC)", title="RMSE over time")
    ax.legend(fontsize=8)
    return fig


def error_map(ds: xr.Dataset, name: str) -> Figure:
    """Time-mean RMSE at 100 m of one method."""
    fig, ax = plt.subplots(figsize=(9, 4))
    ds[f"error_map_100m_{name}"].plot(ax=ax, cmap=cmocean.cm.amp, cbar_kwargs={"label": "RMSE (degC)"})
    ax.set_title(f"{name}: RMSE at 100 m")
    return fig


def warming(ds: xr.Dataset, methods: list[str]) -> Figure:
    """0-700 m mean temperature anomaly and ocean heat content against the truth."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name in ["truth", *methods]:
        style = {"color": "k", "lw": 1.5} if name == "truth" else {"lw": 0.8}
        ds[f"layer_mean_0_700_{name}"].plot(ax=top, label=name, **style)
        (ds[f"ohc_0_2000_{name}"] / 1e22).plot(ax=bottom, label=name, **style)
    top.set(ylabel="0-700 m anomaly (degC)", title="Warming", xlabel="")
    bottom.set(ylabel="OHC 0-2000 m (1e22 J)", title="")
    top.legend(fontsize=8)
    return fig


def nino34(ds: xr.Dataset, methods: list[str]) -> Figure:
    """Nino-3.4 index of each method against the truth."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ds["nino34_truth"].plot(ax=ax, color="k", lw=1.5, label="truth")
    for name in methods:
        r = float(ds[f"nino34_correlation_{name}"])
        ds[f"nino34_{name}"].plot(ax=ax, lw=0.8, label=f"{name} (r={r:.2f})")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(ylabel="Nino-3.4 (degC)", title="Nino-3.4")
    ax.legend(fontsize=8)
    return fig


def all_figures(ds: xr.Dataset, methods: list[str]) -> dict[str, Figure]:
    """Every figure of ``deepda evaluate``, by file stem."""
    figures = {
        "rmse_by_depth": rmse_by_depth(ds, methods),
        "rmse_over_time": rmse_over_time(ds, methods),
        "warming": warming(ds, methods),
        "nino34": nino34(ds, methods),
    }
    for name in methods:
        figures[f"error_map_100m_{name}"] = error_map(ds, name)
    return figures


def close(figures: dict[str, Figure]) -> None:
    for fig in figures.values():
        plt.close(fig)
