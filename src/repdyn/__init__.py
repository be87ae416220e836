"""repdyn: reproduce, probe and fix how neural networks form, keep and lose their representations."""

__version__ = "0.1.0"
