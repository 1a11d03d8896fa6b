"""DeepDA dashboard: Panel + HoloViews + GeoViews + Datashader, state in param (see viewer/app.py)."""
