"""Shared test settings: Hypothesis profiles.

``HYPOTHESIS_PROFILE`` selects one (default ``default``):

- ``default``: quick, for every run (about 25 examples per property, no deadline: one
  clingo solve grounds the whole knowledge base and takes tens of milliseconds);
- ``ci``: heavier, for CI (about 60 examples per property; the whole suite must stay under
  10 minutes on 2 cores).

    HYPOTHESIS_PROFILE=ci python -m pytest -q tests/test_properties.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=_SLOW_IS_FINE)
# CI replays the same 30 examples on every run (derandomize): a red CI then always means the
# change broke something, never a new random draw. The default profile keeps drawing new
# examples on every developer's run, which is where new counterexamples are found.
settings.register_profile("ci", max_examples=30, deadline=None, print_blob=True, derandomize=True,
                          suppress_health_check=_SLOW_IS_FINE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))



@pytest.fixture(scope="session", autouse=True)
def empty_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read a data set an analyst imported on this machine (pain-asp data import-ncci
    writes to the per-user data folder): each run gets an empty one, in pytest's temporary folder
    (commands run as subprocesses inherit it)."""
    before = os.environ.get("PAIN_ASP_DATA_DIR")
    os.environ["PAIN_ASP_DATA_DIR"] = str(tmp_path_factory.mktemp("pain-asp-data"))
    yield
    if before is None:
        del os.environ["PAIN_ASP_DATA_DIR"]
    else:
        os.environ["PAIN_ASP_DATA_DIR"] = before
