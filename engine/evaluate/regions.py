"""Named regions as boolean (lat, lon) masks.

Regions are decided by each cell's centre, so a mask is exact for any regular grid and good
enough at 1-5 degrees. Longitudes are taken modulo 360 (0..360, eastwards); latitudes in
degrees north.

Latitude bands
--------------
``global`` everything; ``tropics`` 20S-20N; ``northern_extratropics`` north of 20N;
``southern_extratropics`` south of 20S; ``nino34`` 5S-5N, 170W-120W (lon 190-240).

Ocean basins
------------
The five basins partition the sphere (every cell belongs to exactly one), so on a grid
their union is the global ocean. In priority order:

``southern``  south of 35S (all longitudes).
``arctic``    north of 66N (near the Arctic Circle; Bering Strait at 65.7N stays Pacific,
              the Nordic seas north of 66N are Arctic).
``atlantic``  between 35S and 66N, from the Americas east to Africa / Eurasia
              (:data:`ATLANTIC_POLYGON`): west edge 65W south of 5N (through South
              America), 75W 5-9N (Colombia; the Gulf of Panama stays Pacific), 84W 9-14N
              (Costa Rica, Nicaragua), 90W 14-18N (Guatemala), 100W north of 18N (Mexico and
              North America: Gulf of Mexico, Caribbean and Hudson Bay are Atlantic); east
              edge 20E (Cape Agulhas) south of 30N and 45E north of it (Mediterranean and
              Black Sea are Atlantic; the Red Sea, south of 30N, is Indian).
``indian``    between 35S and 30N east of 20E to the Indonesian seas (:data:`INDIAN_POLYGON`):
              100E down to 14N (Myanmar), 99.2E to 6N and 102-104E to 4S (the Malay
              peninsula and Sumatra: the Andaman Sea and Malacca Strait are Indian, the
              Gulf of Thailand and South China Sea Pacific), then along Java and the Lesser
              Sunda chain at 7-9S (Java, Flores and Banda seas Pacific; Savu, Timor and
              Arafura seas Indian) to New Guinea, Torres Strait and 142.3E through Cape York
              and Australia (the Gulf of Carpentaria Indian, the Coral Sea Pacific). North of
              30N only the head of the Persian Gulf (45-100E) is Indian.
``pacific``   the rest: between 35S and 66N from the Indian east edge to the Atlantic west
              edge (the South China Sea and the Indonesian seas north of the Lesser Sundas
              included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

if TYPE_CHECKING:  # pragma: no cover
    from engine.grid import Grid

BASINS = ("atlantic", "pacific", "indian", "southern", "arctic")
BANDS = ("global", "tropics", "northern_extratropics", "southern_extratropics", "nino34")
REGIONS = BANDS + BASINS

SOUTHERN_EDGE = -35.0  # the Southern Ocean lies south of this latitude
ARCTIC_EDGE = 66.0  # the Arctic lies north of this latitude
NINO34_LAT = (-5.0, 5.0)
NINO34_LON = (190.0, 240.0)

# Basin polygons as (lon, lat) vertices. The Atlantic uses longitudes in -180..180 (it spans
# the Greenwich meridian), the Indian 0..360. Their far edges run to the poles: the Southern
# Ocean and the Arctic are decided first, and the Atlantic before the Indian.
ATLANTIC_POLYGON = (
    (-65.0, -90.0), (-65.0, 5.0), (-75.0, 5.0), (-75.0, 9.0), (-84.0, 9.0), (-84.0, 14.0), (-90.0, 14.0),
    (-90.0, 18.0), (-100.0, 18.0), (-100.0, 90.0), (45.0, 90.0), (45.0, 30.0), (20.0, 30.0), (20.0, -90.0),
)  # fmt: skip
INDIAN_POLYGON = (
    (20.0, -90.0), (20.0, 90.0), (100.0, 90.0), (100.0, 14.0), (99.2, 14.0), (99.2, 6.0), (102.0, 6.0),
    (102.0, 2.0), (104.0, 2.0), (104.0, -4.0), (105.5, -6.0), (110.0, -7.4), (114.4, -8.0), (116.0, -8.5),
    (119.0, -8.5), (121.0, -8.6), (123.0, -8.5), (125.0, -9.3), (127.0, -8.5), (131.3, -7.5), (134.5, -5.5),
    (136.0, -4.3), (141.0, -8.0), (142.3, -10.7), (142.3, -90.0),
)  # fmt: skip


def _inside(x: np.ndarray, y: np.ndarray, polygon: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Even-odd (ray casting) point-in-polygon test, vectorised over the points."""
    inside = np.zeros(x.shape, dtype=bool)
    vertices = np.asarray(polygon, dtype="f8")
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_cross)
    return inside


def basin_index(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Basin number (index into :data:`BASINS`) of each (lat, lon) cell centre.

    Parameters
    ----------
    lat, lon : 1-D arrays of cell-centre latitudes and longitudes (degrees).

    Returns
    -------
    numpy.ndarray of int, shape (lat, lon).
    """
    yy, xx = np.meshgrid(np.asarray(lat, dtype="f8"), np.mod(np.asarray(lon, dtype="f8"), 360.0), indexing="ij")
    atlantic = _inside(np.where(xx >= 180.0, xx - 360.0, xx), yy, ATLANTIC_POLYGON)
    indian = _inside(xx, yy, INDIAN_POLYGON)
    return np.select(
        [yy < SOUTHERN_EDGE, yy >= ARCTIC_EDGE, atlantic, indian],
        [BASINS.index("southern"), BASINS.index("arctic"), BASINS.index("atlantic"), BASINS.index("indian")],
        default=BASINS.index("pacific"),
    )


def _in_box(lat: np.ndarray, lon: np.ndarray, lat_range: tuple[float, float], lon_range: tuple[float, float]):
    yy, xx = np.meshgrid(np.asarray(lat, dtype="f8"), np.mod(np.asarray(lon, dtype="f8"), 360.0), indexing="ij")
    return (yy >= lat_range[0]) & (yy <= lat_range[1]) & (xx >= lon_range[0]) & (xx <= lon_range[1])


def region_mask(name: str, lat, lon) -> xr.DataArray:
    """Boolean (lat, lon) mask of a named region, from cell-centre coordinates.

    Parameters
    ----------
    name : one of :data:`REGIONS`.
    lat, lon : 1-D coordinates (numpy arrays or DataArrays).

    Returns
    -------
    xarray.DataArray of bool with dims (lat, lon) and the given coordinates. The mask is
    purely geographic: land is included unless combined with an ocean mask (see
    :func:`grid_region_mask`).
    """
    lat_v, lon_v = np.asarray(lat, dtype="f8"), np.asarray(lon, dtype="f8")
    yy = np.broadcast_to(lat_v[:, None], (lat_v.size, lon_v.size))
    if name == "global":
        values = np.ones(yy.shape, dtype=bool)
    elif name == "tropics":
        values = (yy >= -20.0) & (yy <= 20.0)
    elif name == "northern_extratropics":
        values = yy > 20.0
    elif name == "southern_extratropics":
        values = yy < -20.0
    elif name == "nino34":
        values = _in_box(lat_v, lon_v, NINO34_LAT, NINO34_LON)
    elif name in BASINS:
        values = basin_index(lat_v, lon_v) == BASINS.index(name)
    else:
        raise ValueError(f"unknown region {name!r}; choose from {', '.join(REGIONS)}")
    return xr.DataArray(
        np.array(values, dtype=bool), dims=("lat", "lon"), coords={"lat": lat_v, "lon": lon_v}, name=name
    )


def region_masks(names: Sequence[str], lat, lon, ocean: xr.DataArray | np.ndarray | None = None) -> xr.DataArray:
    """Stack of region masks with a leading ``region`` dimension, optionally ocean-only.

    ``ocean`` is a (lat, lon) boolean/0-1 surface ocean mask ANDed into every region.
    """
    masks = [region_mask(name, lat, lon) for name in names]
    stacked = xr.concat(masks, dim="region").assign_coords(region=list(names)).rename("region_mask")
    if ocean is not None:
        stacked = stacked & (np.asarray(ocean) > 0)
    return stacked


def grid_region_mask(grid: Grid, name: str) -> xr.DataArray:
    """Region mask on a :class:`~engine.grid.Grid`, restricted to its surface ocean."""
    mask = region_mask(name, grid.lat, grid.lon)
    return mask & grid.ocean[0]


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges of a regular (or smoothly varying) 1-D coordinate from its centres."""
    centres = np.asarray(centres, dtype="f8")
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mids = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mids[0]], mids, [2 * centres[-1] - mids[-1]]])


def _overlap(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    edges = _edges(centres)
    inside = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
    return inside / (edges[1:] - edges[:-1])


def box_fraction(lat, lon, lat_range: tuple[float, float], lon_range: tuple[float, float]) -> xr.DataArray:
    """Fraction (0..1) of each cell inside a lat/lon box (lon in 0..360, no wrap), as (lat, lon).

    The product of the latitude and longitude overlaps; weight the area by it to average over
    a box on any grid, even one whose cells straddle the box edges.
    """
    lat_v, lon_v = np.asarray(lat, dtype="f8"), np.asarray(lon, dtype="f8")
    frac = _overlap(lat_v, *lat_range)[:, None] * _overlap(lon_v, *lon_range)[None, :]
    return xr.DataArray(frac, dims=("lat", "lon"), coords={"lat": lat_v, "lon": lon_v}, name="box_fraction")
