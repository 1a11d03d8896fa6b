"""Observing: OSSE platforms and networks, the profile table, QC, gridding to observation steps."""
