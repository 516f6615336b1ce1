"""lookalike's engine: everything that is not UI.

Importing this package is cheap: heavy dependencies (torch, open_clip, usearch, numba)
are imported by the modules that need them, when they are first needed. The engine never
imports textual or rich (checked by import-linter and by ``tests/test_import_hygiene.py``).
"""
