"""DeepDA dashboard: Panel + HoloViews, state in param; GeoViews draws the PNG maps and
Datashader the profile positions (see viewer/app.py)."""
