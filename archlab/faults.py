"""Named pause points for the crash tests; inert unless ``ARCHLAB_TEST_PAUSE`` names one.

The reliability tests SIGKILL a study at a chosen phase and check that nothing is lost:
``ARCHLAB_TEST_PAUSE=PHASE:SECONDS`` makes the process announce PHASE on stderr and sleep there.
Phases: ``train`` (a run is in progress), ``export`` (tables being written), ``render`` (report
.md written, .html not yet).
"""

from __future__ import annotations

import os
import sys
import time

PHASES = ("train", "export", "render")


def pause_for_tests(phase: str) -> None:
    """Announce ``phase`` and sleep there when ``ARCHLAB_TEST_PAUSE`` names it; else nothing."""
    name, _, seconds = os.environ.get("ARCHLAB_TEST_PAUSE", "").partition(":")
    if name == phase:
        print(f"archlab: test pause at {phase}", file=sys.stderr, flush=True)
        time.sleep(float(seconds or 0))
