"""Dredge: AWS VPC flow logs, enriched with the application that owned each IP at the flow's time."""

__version__ = "0.1.0"
__all__ = ["__version__"]
