"""Shared test settings: Hypothesis profiles, and each pytest process's own data and cache folders.

``HYPOTHESIS_PROFILE`` selects one (default ``default``):

- ``default``: quick, for every run (about 25 examples per property, no deadline: one
  clingo solve grounds the whole knowledge base and takes tens of milliseconds);
- ``ci``: heavier, for CI (30 examples per property, the same on every run; the whole suite
  must stay under 12 minutes on 2 cores).

    HYPOTHESIS_PROFILE=ci python -m pytest -q tests/test_properties.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

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



def pytest_configure(config: pytest.Config) -> None:
    """Tests never read a data set an analyst imported on this machine (pain-asp data import-ncci
    writes to the per-user data folder) and leave nothing in the per-user cache (each payer file
    a test writes would add a cache file there): each pytest process (each pytest-xdist worker)
    gets an empty data folder and an empty cache folder before collection, removed at its end
    (commands run as subprocesses inherit them)."""
    folder = Path(tempfile.mkdtemp(prefix="pain-asp-tests-"))
    environment = pytest.MonkeyPatch()
    for variable, name in (("PAIN_ASP_DATA_DIR", "data"), ("PAIN_ASP_CACHE_DIR", "cache")):
        (folder / name).mkdir()
        environment.setenv(variable, str(folder / name))
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    config.add_cleanup(environment.undo)


@pytest.fixture
def short_temp() -> Iterator[Path]:
    """A temporary folder with a short path, removed afterwards, for a program's $TMPDIR when it
    puts a socket there (the batch's fork server, Chromium's singleton socket): a socket path has
    at most 107 bytes, which a pytest-xdist worker's tmp_path nearly fills."""
    with tempfile.TemporaryDirectory(prefix="pain-asp-") as folder:
        yield Path(folder)
