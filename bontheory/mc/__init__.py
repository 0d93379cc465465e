"""bontheory.mc"""

__all__: list[str] = []
