"""The package version, on the lowest floor so that records and the CLI can name it."""
__version__ = "0.1.0"
