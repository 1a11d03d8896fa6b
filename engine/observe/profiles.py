"""The profile table: DeepDA's exchange format for observations (DESIGN section 6).

One row per measurement. Columns and dtypes:

============  ==============  ===========================================================
column        dtype           meaning
============  ==============  ===========================================================
time          datetime64[ns]  time of the profile (UTC)
lat           float64         degrees north, -90..90
lon           float64         degrees east, 0..360
depth         float32         metres below the surface, positive down
temperature   float32         in-situ / potential temperature, degC
platform      category        one of PLATFORMS (or "unknown" for real files)
obs_error     float32         error standard deviation, degC (instrument + representativeness)
profile_id    int64           rows of one profile share it
qc            int8            0 = good, otherwise a QC_REASONS code; flagged rows are kept
============  ==============  ===========================================================

Rows of one profile are contiguous, sorted by depth; that is what the CF DSG contiguous
ragged array on disk needs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PLATFORMS = ("argo", "xbt", "ctd", "mooring", "sst", "unknown")

COLUMNS = {
    "time": "datetime64[ns]",
    "lat": "float64",
    "lon": "float64",
    "depth": "float32",
    "temperature": "float32",
    "platform": pd.CategoricalDtype(PLATFORMS),
    "obs_error": "float32",
    "profile_id": "int64",
    "qc": "int8",
}

# QC reason codes. 0 is good; every other row is kept in the table, flagged, and counted.
QC_GOOD = 0
QC_REASONS = {
    1: "missing value (NaN)",
    2: "temperature outside -2.5..40 degC",
    3: "temperature looks like Kelvin",
    4: "impossible position",
    5: "negative depth",
    6: "deeper than the local sea floor",
    7: "time outside the period",
    8: "duplicate measurement",
    9: "flagged bad in the source file",
    10: "non-finite value (inf)",
    11: "deeper than the deepest ocean (11000 m)",
    12: "observation error not positive",
    13: "unreadable value in the source file (e.g. year 9999)",
    14: "background check: departure from climatology beyond k expected spreads",
}


def empty_table() -> pd.DataFrame:
    """A profile table with no rows and the right dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in COLUMNS.items()})


def as_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce ``frame`` to the profile-table columns and dtypes (missing qc -> 0).

    Raises
    ------
    ValueError
        Naming the missing columns.
    """
    frame = frame.copy()
    if "qc" not in frame:
        frame["qc"] = QC_GOOD
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise ValueError(f"profile table lacks column(s): {', '.join(missing)}")
    out = pd.DataFrame({name: frame[name].astype(dtype) for name, dtype in COLUMNS.items()})
    return out.reset_index(drop=True)


def qc_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Count of rows per QC outcome, good rows included; one row per reason present."""
    counts = table["qc"].value_counts().sort_index()
    names = {QC_GOOD: "good", **QC_REASONS}
    return pd.DataFrame(
        {
            "code": counts.index.astype(int),
            "reason": [names.get(int(c), "unknown") for c in counts.index],
            "rows": counts.values,
        }
    )


def good(table: pd.DataFrame) -> pd.DataFrame:
    """Only the rows that passed QC."""
    return table[table["qc"].to_numpy() == QC_GOOD]


def profile_starts(table: pd.DataFrame) -> np.ndarray:
    """Row index where each profile starts (table sorted by profile)."""
    ids = table["profile_id"].to_numpy()
    return np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
