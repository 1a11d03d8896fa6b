"""``deepda bench``: speed and memory of the pipeline's stages, as JSON.

Cases live in the modules below, registered by importing them; ``run_cases`` runs each in a
fresh process.
"""

from engine.bench import compute, data, files, gpu, pipeline, scale  # noqa: F401  (registers the cases)
from engine.bench.core import CASES, case, run_cases

__all__ = ["CASES", "case", "run_cases"]
