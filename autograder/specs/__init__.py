"""Grading specs, one module per assignment (`ps01.py` defines `SPEC`). Trusted side only."""
