"""medlake — a medical big-data lakehouse on Dagster and Delta Lake."""

from medlake.errors import MedlakeError

__all__ = ["MedlakeError", "__version__"]
__version__ = "0.1.0"
