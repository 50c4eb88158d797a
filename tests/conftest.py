"""Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE`` or, under CI (``CI=true``), ``ci``:

* ``ci``: derandomized (a fixed seed per test, the same examples on every run) and no example
  database, so CI's verdict depends only on the code;
* ``dev`` (default elsewhere): random examples, remembered failures in ``.hypothesis/``;
* ``explore``: 20× the examples of ``dev``, random; run before each submission
  (``HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest tests``); a failure it finds becomes
  an explicit ``@example(...)`` in the test.

Tests set no ``max_examples`` of their own, so the profile decides how many examples run.

Other chance in tests: torch's global generator is seeded before every test (an autouse
fixture), so a test draws the same numbers whichever tests ran before it; torch runs
single-threaded here (``torch.set_num_threads(1)``) so that float reductions add in the same
order on every machine; no test asserts on wall time (timing lives in ``benchmarks/``); data
subsets are chosen by seeded generators (``lcbook.data.subset``).
"""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

EXAMPLES = 100
settings.register_profile("dev", max_examples=EXAMPLES, deadline=None)
settings.register_profile("ci", max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=20 * EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded_torch():
    torch.manual_seed(0)
    yield
