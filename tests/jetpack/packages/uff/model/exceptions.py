"""SIMULATED uff.model.exceptions."""

from _simjetson.uff_convert import UffException

__all__ = ["UffException"]
