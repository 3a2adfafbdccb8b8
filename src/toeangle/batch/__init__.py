"""Batch scoring of many photos: ``toeangle batch`` (see docs/batch.md)."""

from .runner import BatchConfig, BatchUsageError, Summary, run_batch

__all__ = ["BatchConfig", "BatchUsageError", "Summary", "run_batch"]
