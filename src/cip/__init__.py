"""cip: the Container Image Promoter."""

__version__ = "0.1.0"
