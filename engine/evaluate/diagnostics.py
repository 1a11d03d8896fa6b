"""Climate diagnostics: layer means, ocean heat content, linear trends, Nino-3.4 and the
seasonal-cycle amplitude, as small pure functions over xarray objects.

They follow the conventions of :mod:`engine.evaluate.metrics` (dims, NaN-aware weighted means, the
``Grid.weights()`` Dataset as ``weights``, an optional region ``mask``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from engine.evaluate.metrics import (
    Field,
    Mask,
    Range,
    Weights,
    apply_mask,
    labelled,
    layer_weights,
    present_dims,
    units_of,
    weighted_mean,
)
from engine.evaluate.regions import NINO34_LAT, NINO34_LON, box_fraction
from engine.grid import SEAWATER_RHO_CP

PER_YEARS = {"year": 1.0, "decade": 10.0, "century": 100.0}
YEAR_DAYS = {"noleap": 365.0, "365_day": 365.0, "all_leap": 366.0, "366_day": 366.0, "360_day": 360.0, "julian": 365.25}


def layer_mean(
    temperature: Field, weights: Weights = None, depth_range: Range = (0.0, 700.0), mask: Mask = None
) -> Field:
    """Volume-weighted mean over the layer ``depth_range`` (m), globally or within ``mask``.

    Returns one value per time (and per any other dim left, e.g. member).
    """
    data = apply_mask(temperature, mask)
    w = layer_weights(weights, data, depth_range)
    out = weighted_mean(data, w, present_dims(data, ("depth", "lat", "lon")))
    long_name = (
        f"{depth_range[0]:g}-{depth_range[1]:g} m volume mean of {temperature.attrs.get('long_name', 'temperature')}"
    )
    return labelled(out, "layer_mean", long_name, units_of(temperature), depth_range=list(depth_range))


def ocean_heat_content(
    temperature_anomaly: Field, weights: xr.Dataset | Field, depth_range: Range = (0.0, 700.0), mask: Mask = None
) -> Field:
    """Ocean heat content anomaly of a layer in J: rho*cp * sum(T' * volume), per time.

    ``weights``: the ``Grid.weights()`` Dataset or a volume / area DataArray. Land (NaN or
    zero volume) adds nothing; ``mask`` restricts it to a region.
    """
    data = apply_mask(temperature_anomaly, mask)
    w = layer_weights(weights, data, depth_range)
    total = (data * w).sum(present_dims(data, ("depth", "lat", "lon")))
    long_name = f"ocean heat content anomaly {depth_range[0]:g}-{depth_range[1]:g} m"
    return labelled(SEAWATER_RHO_CP * total, "ohc", long_name, "J", depth_range=list(depth_range))


def ocean_heat_content_per_area(
    temperature_anomaly: Field, weights: Weights = None, depth_range: Range = (0.0, 700.0)
) -> Field:
    """Column heat content anomaly in J m-2: rho*cp * sum over depth of T' * dz (layer part).

    ``weights`` (optional) supplies the level ``thickness``; all-NaN columns (land) are NaN.
    """
    has_thickness = isinstance(weights, xr.Dataset) and "thickness" in weights
    dz = layer_weights(weights[["thickness"]] if has_thickness else None, temperature_anomaly, depth_range)
    column = (temperature_anomaly * dz).sum("depth", min_count=1)
    long_name = f"ocean heat content anomaly per area {depth_range[0]:g}-{depth_range[1]:g} m"
    return labelled(SEAWATER_RHO_CP * column, "ohc_per_area", long_name, "J m-2", depth_range=list(depth_range))


def _time_in_years(time: Field) -> Field:
    """Elapsed time in years of the calendar (datetime64, cftime or numeric years)."""
    values = np.asarray(time.values)
    if np.issubdtype(values.dtype, np.number):
        years = values.astype("f8")
    elif np.issubdtype(values.dtype, np.datetime64):
        years = (values - values[0]) / np.timedelta64(1, "D") / 365.2425
    else:
        length = YEAR_DAYS.get(getattr(values[0], "calendar", "standard"), 365.2425)
        years = np.array([(t - values[0]).total_seconds() for t in values]) / 86400.0 / length
    return xr.DataArray(years, dims=time.dims, coords=time.coords)


def linear_trend(series: Field, dim: str = "time", per: str = "decade") -> Field:
    """Least-squares linear trend along ``dim``, in units per ``per`` ("year", "decade", "century").

    Works at every point of a field (NaN-aware: each point uses its valid times; fewer than
    two give NaN). Time may be datetime64, cftime (any calendar) or numeric years.
    """
    x = _time_in_years(series[dim]).where(series.notnull())
    y = series.where(x.notnull())
    dx, dy = x - x.mean(dim), y - y.mean(dim)
    denominator = (dx**2).sum(dim)
    slope = (dx * dy).sum(dim) / denominator.where(denominator > 0)
    units = series.attrs.get("units")
    return labelled(slope * PER_YEARS[per], "trend", f"linear trend per {per}", f"{units} per {per}" if units else None)


def trend_map(field: Field, dim: str = "time", per: str = "decade") -> Field:
    """Linear trend at each point of ``field`` (e.g. (lat, lon) or (depth, lat, lon) maps)."""
    return linear_trend(field, dim, per)


def nino34(anomaly: Field, weights: Weights = None) -> Field:
    """Nino-3.4 index: area-weighted mean anomaly over 5S-5N, 170W-120W (lon 190-240).

    Cells count by the fraction of their area inside the box, so the index is defined on any
    grid. A field with depth uses its top level.
    """
    if "depth" in anomaly.dims:
        anomaly = anomaly.isel(depth=0)
    fraction = box_fraction(anomaly["lat"], anomaly["lon"], NINO34_LAT, NINO34_LON)
    if isinstance(weights, xr.Dataset):
        area = weights["area"]
    elif weights is not None and set(weights.dims) == {"lat", "lon"}:
        area = weights
    else:
        area = np.cos(np.deg2rad(anomaly["lat"])) * xr.ones_like(anomaly["lon"], dtype="f8")
    out = weighted_mean(anomaly, area * fraction, ("lat", "lon"))
    return labelled(out, "nino34", "Nino-3.4 index (5S-5N, 170W-120W mean anomaly)", units_of(anomaly))


def seasonal_cycle_amplitude(field: Field, dim: str = "time") -> Field:
    """Peak-to-trough range of the mean monthly cycle along ``dim`` at each point."""
    clim = field.groupby(f"{dim}.month").mean(dim)
    amplitude = clim.max("month") - clim.min("month")
    return labelled(amplitude, "seasonal_cycle_amplitude", "seasonal cycle amplitude (max - min)", units_of(field))
