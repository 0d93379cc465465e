"""Exact BoN theory on finite outcome spaces."""

__all__: list[str] = []
