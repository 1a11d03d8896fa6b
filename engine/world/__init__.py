"""The synthetic model world: control and historical runs from modes, patterns and eddies."""
