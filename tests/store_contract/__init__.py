"""The Store contract, written once and run on every store (see backends.FACTORIES)."""
