"""bontheory.rewards"""

__all__: list[str] = []
