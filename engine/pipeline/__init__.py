"""The one pipeline: ``RunConfig`` (config), one function per stage (stages),
the batch run and its report (run), the command line (cli). Every page and
every command calls these; there is no second pipeline anywhere."""

from engine.pipeline.config import InputConfig, RunConfig, SeasonConfig
from engine.pipeline.run import Computed, RunResult, compute, run
from engine.pipeline.stages import BundleSet, Segments

__all__ = [
    "BundleSet",
    "Computed",
    "InputConfig",
    "RunConfig",
    "RunResult",
    "SeasonConfig",
    "Segments",
    "compute",
    "run",
]
