"""All red-team attacks (one hostile or broken ps01 submission each) and their expectations.

Importing the attack modules registers them in `ATTACKS`; see base.py for the format.
"""

from redteam import resources, round2, tampering  # noqa: F401  (they register attacks)
from redteam.base import ATTACKS, PREPARED, Env

__all__ = ["ATTACKS", "PREPARED", "Env"]
