from pbpar._core import add, scaled

__all__ = ["add", "scaled"]
