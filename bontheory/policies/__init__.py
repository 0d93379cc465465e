"""bontheory.policies"""

__all__: list[str] = []
