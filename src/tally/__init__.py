"""tally: usage metering and usage reporting."""

__version__ = "0.1.0"
