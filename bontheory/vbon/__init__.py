"""bontheory.vbon"""

__all__: list[str] = []
