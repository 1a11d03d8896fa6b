"""Spatial ingredients of the synthetic model world (DESIGN section 5).

Pure functions of a :class:`~engine.grid.Grid` (and a seeded generator): the target
standard-deviation map, the thermocline depth, smooth random horizontal fields, the ENSO
pair, the forced-warming and volcanic patterns and area-weighted box means. The modes'
dynamics live in :mod:`engine.world.modes`, the eddies and calendars in :mod:`engine.world.synthetic`.

All maps are (depth, lat, lon) or (lat, lon) float64 and zero on land unless stated.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from engine.grid import Grid

KM_PER_DEG = 111.2
BACKGROUND_FLOOR = 0.15  # the non-ENSO modes always carry this share of the mode variance
# (lat, lon, sigma_lat, sigma_lon) in degrees: Gulf Stream, Kuroshio, Agulhas retroflection,
# Brazil-Malvinas confluence, East Australian Current separation.
BOUNDARY_CURRENTS = (
    (38.0, 295.0, 5.0, 12.0),
    (36.0, 148.0, 5.0, 12.0),
    (-40.0, 25.0, 5.0, 15.0),
    (-40.0, 305.0, 5.0, 8.0),
    (-33.0, 155.0, 5.0, 6.0),
)


def lon_distance(lon: np.ndarray, lon0: float) -> np.ndarray:
    """Signed east-west distance in degrees from ``lon0``, wrapped to [-180, 180)."""
    return (np.asarray(lon) - lon0 + 180.0) % 360.0 - 180.0


def blob(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float, s_lat: float, s_lon: float) -> np.ndarray:
    """Gaussian bump of height 1 (periodic in longitude)."""
    return np.exp(-(((lat - lat0) / s_lat) ** 2) - (lon_distance(lon, lon0) / s_lon) ** 2)


def lat_lon(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """2-D (lat, lon) coordinate arrays."""
    return np.meshgrid(grid.lat, grid.lon, indexing="ij")


def pacific_window(lon: np.ndarray, west: float = 125.0, east: float = 280.0, taper: float = 15.0) -> np.ndarray:
    """1 inside the equatorial Pacific longitudes, smooth cosine taper to 0 outside.

    Keeps the ENSO patterns out of the Indian Ocean and the Atlantic (Panama is narrow).
    """
    lon = np.asarray(lon) % 360.0
    rise = np.clip((lon - (west - taper)) / taper, 0.0, 1.0)
    fall = np.clip(((east + taper) - lon) / taper, 0.0, 1.0)
    return np.sin(0.5 * np.pi * rise) ** 2 * np.sin(0.5 * np.pi * fall) ** 2


def box_weights(grid: Grid, lat_range: tuple[float, float], lon_range: tuple[float, float]) -> np.ndarray:
    """(lat, lon) weights summing to 1 for an area mean over a lat/lon box at the top level.

    Each surface-ocean cell counts with the area it shares with the box, so the box mean is
    defined even when it is smaller than a cell (tiny test grids).
    """
    half = grid.spec.resolution / 2.0
    lat_overlap = np.clip(
        np.minimum(grid.lat + half, lat_range[1]) - np.maximum(grid.lat - half, lat_range[0]), 0.0, None
    )
    lon_overlap = np.zeros(len(grid.lon))
    for shift in (-360.0, 0.0, 360.0):  # boxes may straddle the date line or 0 E
        lo, hi = lon_range[0] + shift, lon_range[1] + shift
        lon_overlap += np.clip(np.minimum(grid.lon + half, hi) - np.maximum(grid.lon - half, lo), 0.0, None)
    w = (lat_overlap * np.cos(np.deg2rad(grid.lat)))[:, None] * lon_overlap[None, :] * grid.ocean[0]
    if w.sum() <= 0:
        raise ValueError(f"no ocean cell in the box lat {lat_range}, lon {lon_range}")
    return w / w.sum()


def surface_area_weights(grid: Grid) -> np.ndarray:
    """(lat, lon) area weights of surface-ocean cells summing to 1."""
    w = grid.area * grid.ocean[0]
    return w / w.sum()


def thermocline_depth(grid: Grid) -> np.ndarray:
    """(lat, lon) thermocline depth in metres, from the climatology.

    The gradient-weighted mean depth of the strongest stratification between 20 and 400 m
    (weights (-dT/dz)^2, which is smoother than the arg-max on coarse levels), smoothed over
    about 1000 km and clipped to 40-250 m, the range of the real tropical thermocline.
    """
    z, clim = grid.depth, grid.climatology.astype("f8")
    if len(z) < 2:
        return np.full(grid.shape[1:], 100.0)
    mid = 0.5 * (z[1:] + z[:-1])
    grad = -(clim[1:] - clim[:-1]) / np.diff(z)[:, None, None]
    valid = grid.ocean[1:] & (mid[:, None, None] >= 20.0) & (mid[:, None, None] <= 400.0)
    w = np.where(valid, np.clip(grad, 0.0, None) ** 2, 0.0)
    total = w.sum(axis=0)
    depth = np.where(total > 0, (w * mid[:, None, None]).sum(axis=0) / np.where(total > 0, total, 1.0), 100.0)
    sigma = max(1000.0 / (KM_PER_DEG * grid.spec.resolution), 0.5)
    depth = ndimage.gaussian_filter(depth, sigma, mode=("nearest", "wrap"))
    return np.clip(depth, 40.0, 250.0)


def boundary_current_map(grid: Grid) -> np.ndarray:
    """(lat, lon) map in [0, 1]: 1 at the western boundary current extensions."""
    lat, lon = lat_lon(grid)
    total = sum(blob(lat, lon, *bc) for bc in BOUNDARY_CURRENTS)
    return np.clip(total, 0.0, 1.0)


def thermocline_shape(z: np.ndarray, ztc: np.ndarray) -> np.ndarray:
    """(depth, lat, lon) bump centred on the thermocline, value 1 there.

    Asymmetric: it fades within half the thermocline depth above (so it does not reach the
    surface) and over 60 m + 0.3 x depth below.
    """
    z = z[:, None, None]
    up = 0.5 * ztc
    down = 60.0 + 0.3 * ztc
    width = np.where(z < ztc, up, down)
    return np.exp(-(((z - ztc) / width) ** 2))


def target_std(grid: Grid, ztc: np.ndarray, wbc: np.ndarray) -> np.ndarray:
    """(depth, lat, lon) target standard deviation of the total anomaly (degC), 0 on land.

    Sum in quadrature of a surface (mixed-layer) part: 0.45-0.7 degC, 1.1-1.4 degC in the
    central and eastern equatorial Pacific (where ENSO lives), +0.6 in the boundary currents, lower under sea ice; a
    thermocline part centred on ``ztc``: 1.75 degC at the equator, 0.35 away from it; and a
    deep floor 0.1-0.2 degC (more in the subpolar North Atlantic, where convection reaches
    down).
    """
    lat, lon = lat_lon(grid)
    alat = np.abs(lat)
    surf = 0.45 + 0.25 * np.exp(-(((alat - 40.0) / 15.0) ** 2)) - 0.2 * np.clip((alat - 60.0) / 20.0, 0.0, 1.0)
    enso_region = np.exp(-((lat / 8.0) ** 2)) * np.exp(-((lon_distance(lon, 240.0) / 45.0) ** 2)) * pacific_window(lon)
    surf = surf + 0.95 * enso_region
    surf = surf + 0.6 * wbc
    z = grid.depth[:, None, None]
    mixed = surf[None] * np.exp(-np.clip(z - 30.0, 0.0, None) / 120.0)
    thermo = (0.35 + 1.4 * np.exp(-((lat / 10.0) ** 2)))[None] * thermocline_shape(grid.depth, ztc)
    deep = 0.1 + 0.08 * np.exp(-z / 800.0) + 0.06 * blob(lat, lon, 60.0, 325.0, 10.0, 25.0)[None]
    return np.sqrt(mixed**2 + thermo**2 + deep**2) * grid.ocean


def eddy_std_map(grid: Grid, target: np.ndarray, wbc: np.ndarray, fraction: float, efold_m: float) -> np.ndarray:
    """(depth, lat, lon) standard deviation of the eddy part (degC).

    The near-surface eddy variance is ``fraction`` of the target variance on the area mean,
    2.5 times more (relative) in the boundary currents, capped at 60 %; it decays with depth
    with ``efold_m`` and never exceeds 60 % of the local target variance.
    """
    rel = 1.0 + 1.5 * wbc
    rel = rel / (surface_area_weights(grid) * rel).sum()
    share = np.clip(fraction * rel, 0.0, 0.6)
    std = np.sqrt(share)[None] * target[0][None] * np.exp(-grid.depth / efold_m)[:, None, None]
    return np.minimum(std, np.sqrt(0.6) * target) * grid.ocean


def smooth_random_fields(rng: np.random.Generator, grid: Grid, lengths_km: np.ndarray) -> np.ndarray:
    """(n, lat, lon) unit-variance smooth random fields, one per length scale.

    Gaussian-filtered white noise, periodic in longitude. The filter width is ``L / 2`` in
    km (a correlation e-folding of about ``L``), at least 0.6 cells; in longitude it widens
    towards the poles so the scale stays fixed in km. Each field has zero area mean over the
    surface ocean, so the random modes hardly move the global mean (which would blur the
    forced trend of the historical run).
    """
    res_km = KM_PER_DEG * grid.spec.resolution
    noise = rng.standard_normal((len(lengths_km),) + grid.shape[1:])
    out = np.empty_like(noise)
    coslat = np.maximum(np.cos(np.deg2rad(grid.lat)), 0.05)
    for k, length in enumerate(lengths_km):
        sigma_y = max(0.5 * length / res_km, 0.6)
        field = ndimage.gaussian_filter1d(noise[k], sigma_y, axis=0, mode="reflect")
        for j, c in enumerate(coslat):
            sigma_x = min(max(0.5 * length / (res_km * c), 0.6), len(grid.lon) / 2.0)
            field[j] = ndimage.gaussian_filter1d(field[j], sigma_x, mode="wrap")
        out[k] = field
    weights = surface_area_weights(grid)
    out -= np.tensordot(out, weights, axes=([1, 2], [0, 1]))[:, None, None]
    out /= np.sqrt(np.tensordot(out**2, weights, axes=([1, 2], [0, 1])))[:, None, None]
    return out


def background_patterns(
    rng: np.random.Generator,
    grid: Grid,
    ztc: np.ndarray,
    n: int,
    lengths: tuple[float, float],
    efolds: tuple[float, float],
) -> np.ndarray:
    """(n, depth, lat, lon) float32 unscaled smooth 3-D patterns of the non-ENSO modes.

    Horizontal scales run log-uniformly from ``lengths[0]`` (basin) to ``lengths[1]``;
    vertical e-folding scales log-uniformly between ``efolds``, in random order. Even modes
    are surface-intensified (exp(-z/h)), odd modes centred on the thermocline
    (exp(-|z - ztc|/h)). Each has unit rms over ocean points.
    """
    if n <= 0:
        return np.zeros((0,) + grid.shape, dtype="f4")
    horizontal = smooth_random_fields(rng, grid, np.geomspace(lengths[0], lengths[1], n))
    h = rng.permutation(np.geomspace(efolds[0], efolds[1], n))
    z = grid.depth[:, None, None]
    out = np.empty((n,) + grid.shape, dtype="f4")  # float32: the paper grid has ~100 M values
    for k in range(n):
        vertical = np.exp(-z / h[k]) if k % 2 == 0 else np.exp(-np.abs(z - ztc[None]) / h[k])
        p = horizontal[k][None] * vertical * grid.ocean
        out[k] = p / np.sqrt(np.mean(p[grid.ocean] ** 2))
    return out


def enso_patterns(grid: Grid, ztc: np.ndarray) -> np.ndarray:
    """(2, depth, lat, lon) ENSO pair; pattern 1 has a box-mean surface value near 1.

    Pattern 1 (El Nino): eastern and central equatorial Pacific surface warming mixed down
    ~50 m, a warm thermocline anomaly in the east and a cool one in the west (the tilt
    relaxes). Pattern 2 (recharge): zonally broad warm equatorial thermocline (heat
    content), with almost no surface signal; in the dynamics it leads pattern 1 by a
    quarter period. Both share one normalisation, so their ratio (thermocline ~1.3-1.5
    times the surface warming, as observed) survives the later scaling to the Nino-3.4 std.
    """
    lat, lon = lat_lon(grid)
    z = grid.depth[:, None, None]
    pac = pacific_window(lon)
    shape = thermocline_shape(grid.depth, ztc)
    surface = 1.2 * np.exp(-((lon_distance(lon, 240.0) / 45.0) ** 2)) * np.exp(-z / 50.0)
    tilt = 1.2 * np.exp(-((lon_distance(lon, 255.0) / 30.0) ** 2)) - 1.0 * np.exp(
        -((lon_distance(lon, 160.0) / 25.0) ** 2)
    )
    p1 = pac * np.exp(-((lat / 8.0) ** 2)) * (surface + tilt * shape)
    p2 = 0.8 * pac * np.exp(-((lat / 10.0) ** 2)) * shape * (1.0 - np.exp(-z / 40.0))
    return np.stack([p1, p2]) * grid.ocean


def warming_pattern(grid: Grid, efold_m: float) -> np.ndarray:
    """(depth, lat, lon) forced-warming pattern with area mean 1 at the top level.

    Stronger in the North Atlantic and in the Southern Ocean mid-latitudes, weaker in the
    eastern tropical Pacific (as in observed trends), decaying with depth with ``efold_m``.
    """
    lat, lon = lat_lon(grid)
    horizontal = (
        1.0
        + 0.7 * blob(lat, lon, 45.0, 320.0, 12.0, 30.0)
        + 0.4 * np.exp(-(((lat + 45.0) / 8.0) ** 2))
        - 0.7 * blob(lat, lon, 0.0, 255.0, 10.0, 35.0)
    )
    pattern = horizontal[None] * np.exp(-grid.depth / efold_m)[:, None, None] * grid.ocean
    return pattern / (surface_area_weights(grid) * pattern[0]).sum()


def large_scale_offset(
    grid: Grid, rng: np.random.Generator, surface_std: float, efold_range_m: tuple[float, float]
) -> np.ndarray:
    """(depth, lat, lon) random basin-to-global-scale temperature offset in degC.

    Stands for the slow variability and forced change a control run lacks (its random
    modes have zero global mean): a surface area mean drawn from N(0, ``surface_std``),
    varying by about half of it over ~8000 km (one sign everywhere), decaying with depth with an e-folding
    drawn log-uniformly from ``efold_range_m``. Zero on land.
    """
    mean = rng.normal(0.0, surface_std)
    horizontal = np.maximum(1.0 + 0.5 * smooth_random_fields(rng, grid, np.array([8000.0]))[0], 0.2)
    efold = math.exp(rng.uniform(math.log(efold_range_m[0]), math.log(efold_range_m[1])))
    return mean * horizontal[None] * np.exp(-grid.depth / efold)[:, None, None] * grid.ocean


def volcanic_pattern(grid: Grid, efold_m: float = 100.0) -> np.ndarray:
    """(depth, lat, lon) volcanic cooling pattern: uniform, area mean 1 at the top level."""
    pattern = np.exp(-grid.depth / efold_m)[:, None, None] * grid.ocean
    return pattern / (surface_area_weights(grid) * pattern[0]).sum()


def scale_modes(
    enso: np.ndarray,
    background: np.ndarray,
    target: tuple[np.ndarray, float],
    eddy_std: np.ndarray,
    box: np.ndarray,
    rest: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale the ENSO pair and the background patterns (in place) to the target variance.

    The ENSO pair gets one factor so the Nino-3.4 variance (ENSO + background + eddies
    ``rest``) equals the configured one; ``box`` holds the Nino-3.4 weights and
    ``target`` is (target std map, wanted Nino-3.4 std). The background patterns are multiplied pointwise
    by ``sqrt(background variance wanted / background variance they have)``, a smooth map.
    Where ENSO alone would leave less than ``BACKGROUND_FLOOR`` to the background, the
    target is raised. Returns the patterns (K, ...) and the final target map.
    """
    tmap, nino_std = target
    have = np.zeros(tmap.shape)
    for pattern in background:  # one at a time: the paper grid's stack is ~400 MB
        have += pattern.astype("f8") ** 2
    enso_var0 = (enso**2).sum(axis=0)
    enso_box0 = (enso[:, 0] * box).sum(axis=(1, 2))
    scale = 1.0
    for _ in range(8):  # converges in a few sweeps: the background share depends on the ENSO one
        enso_var = scale**2 * enso_var0
        want2 = np.maximum(tmap**2, (enso_var + eddy_std**2) / (1.0 - BACKGROUND_FLOOR))
        modes2 = want2 - eddy_std**2
        mult = np.sqrt(np.maximum(modes2 - enso_var, BACKGROUND_FLOOR * modes2) / np.where(have > 0, have, 1.0))
        mult = np.where(have > 0, mult, 0.0)
        bg_box = (background[:, 0] * mult[0] * box).sum(axis=(1, 2))
        left = nino_std**2 - bg_box @ bg_box - rest
        if left <= 0:
            raise ValueError(f"enso_nino34_std={nino_std} is below the non-ENSO Nino-3.4 variability")
        scale = math.sqrt(left / (enso_box0 @ enso_box0))
    background *= mult.astype("f4")
    patterns = np.concatenate([(scale * enso).astype("f4"), background])
    return patterns, np.sqrt(want2)


def gaussian_noise_statistics(sigma: float) -> tuple[np.ndarray, float]:
    """Correlation at lags 0, 1, ... cells of white noise filtered by ndimage's Gaussian, and its variance.

    ``ndimage`` truncates the kernel at ``int(4 sigma + 0.5)`` cells; the correlation is the
    kernel's normalised autocorrelation (zero beyond twice that radius) and the variance
    ``sum(kernel**2)``, per filtered axis.
    """
    radius = int(4.0 * sigma + 0.5)
    delta = np.zeros(4 * radius + 1)
    delta[2 * radius] = 1.0
    kernel = ndimage.gaussian_filter1d(delta, sigma, mode="constant")
    corr = np.correlate(kernel, kernel, mode="full")[len(kernel) - 1 :]
    return corr[: 2 * radius + 1] / corr[0], float(corr[0])
