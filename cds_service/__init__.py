"""CDS Hooks service for relapsed/refractory multiple myeloma."""

__version__ = "0.3.0"
