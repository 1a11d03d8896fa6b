"""Assimilation methods side by side (DAPPER style): base, deepda, oi, kf, simple; the registry; reanalysis files."""
