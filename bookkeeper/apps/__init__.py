"""Applications built from the library: ``bookkeeper demo`` and ``bookkeeper chaos``."""
