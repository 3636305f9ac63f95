"""Shared pytest setup for the whole test tree."""

import sys
from pathlib import Path

# tests/ holds importable helper packages (fleet, jetpack); make them importable the
# same way whether pytest runs from the repo root or from tests/.
TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

# --- simulated fleet (tests/fleet) -------------------------------------------------
from fleet.fixture import module_sim_fleet, sim_fleet  # noqa: E402, F401  (fixtures)
