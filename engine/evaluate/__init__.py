"""Evaluation: metrics, scores, summary tables, climate diagnostics, regions, figures."""
