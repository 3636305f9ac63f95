"""SIMULATED uff.model."""
