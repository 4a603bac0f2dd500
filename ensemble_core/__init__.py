"""ensemble_core: deep ensembles for predictive uncertainty, in PyTorch.

No Streamlit here: the same core serves the dashboard, the CLI, the tests and
the benchmarks.
"""

from .config import ConfigError, DataSpec, LossSpec, ModelSpec, OptimSpec, RunConfig, StrategySpec

__all__ = ["ConfigError", "DataSpec", "LossSpec", "ModelSpec", "OptimSpec", "RunConfig", "StrategySpec"]
