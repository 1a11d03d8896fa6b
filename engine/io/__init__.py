"""``engine.io``: the only package that reads or writes files (besides checkpoints).

``core`` holds geography, configs, the embedded default's cache and safe writing; ``fields``
the gridded CF netCDF (world and analysis files); ``dsg`` and
``csvfiles`` the profile table on disk; ``profile_index`` the cheap per-profile readers of
DSG files; ``netcdf_decode`` the low-level netCDF decoding shared by the readers;
``realformats`` the EN4 and Argo readers; ``wod`` the World Ocean Database reader;
``observations`` the one entry point that opens
any observation file with QC; ``reading`` many files at once, streamed into one; ``integrity`` the truncation checks of input files;
``safety`` the guard that outputs never replace inputs and the temporary-file naming.
"""

from engine.io import first_start
from engine.io.analysis import discard_partial, partial_path
from engine.io.core import (
    InputError,
    append_csv_row,
    assets_dir,
    atomic_path,
    cache_dir,
    cached_default,
    check_writable,
    default_files,
    history_line,
    load_geography,
    load_grid,
    read_colormap_table,
    read_config,
    read_csv_table,
    read_natural_earth,
    read_oni,
    shipped_model,
    trim_csv_log,
    write_bytes,
    write_config,
    write_dataset,
    write_default_manifest,
    write_figure,
    write_text,
)
from engine.io.csvfiles import read_profiles_csv, write_profiles_csv, write_profiles_csv_incremental
from engine.io.dsg import (
    DEFAULT_OBS_ERROR,
    OBS_FORMATS,
    classify_platform,
    default_obs_error,
    read_profiles,
    write_profiles,
    write_profiles_incremental,
)
from engine.io.fields import check_fields, open_fields, write_fields_incremental, write_world
from engine.io.integrity import check_complete, readable
from engine.io.observations import (
    check_observations,
    good_profile_times,
    is_osse_file,
    observation_format,
    observation_paths,
    open_observations,
    profile_times,
    read_observation_groups,
)
from engine.io.profile_index import read_profile_headers, read_profile_summary
from engine.io.reading import read_observation_files, read_observation_parts, write_observation_files
from engine.io.realformats import depth_from_pressure, read_argo, read_en4
from engine.io.safety import check_outputs_distinct, clean_stale_temps
from engine.io.wod import read_wod

__all__ = [
    "DEFAULT_OBS_ERROR",
    "OBS_FORMATS",
    "InputError",
    "append_csv_row",
    "assets_dir",
    "atomic_path",
    "cache_dir",
    "cached_default",
    "check_complete",
    "check_outputs_distinct",
    "check_fields",
    "check_observations",
    "check_writable",
    "clean_stale_temps",
    "classify_platform",
    "default_files",
    "default_obs_error",
    "first_start",
    "depth_from_pressure",
    "history_line",
    "is_osse_file",
    "observation_paths",
    "read_observation_files",
    "read_observation_parts",
    "write_observation_files",
    "load_geography",
    "load_grid",
    "observation_format",
    "open_fields",
    "partial_path",
    "discard_partial",
    "good_profile_times",
    "profile_times",
    "read_observation_groups",
    "open_observations",
    "read_argo",
    "read_colormap_table",
    "readable",
    "read_config",
    "read_csv_table",
    "read_en4",
    "read_natural_earth",
    "read_oni",
    "shipped_model",
    "read_profile_headers",
    "read_profile_summary",
    "read_profiles",
    "read_profiles_csv",
    "read_wod",
    "trim_csv_log",
    "write_config",
    "write_dataset",
    "write_default_manifest",
    "write_figure",
    "write_fields_incremental",
    "write_profiles",
    "write_profiles_csv",
    "write_profiles_csv_incremental",
    "write_profiles_incremental",
    "write_bytes",
    "write_text",
    "write_world",
]
