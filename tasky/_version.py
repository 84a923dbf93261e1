"""The package version, in a module of its own so the client can read it without importing
the package's top level (which loads the client lazily: an import cycle otherwise)."""

__version__ = "0.1.0"
