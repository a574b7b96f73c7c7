"""The request budget: every step gets the epoch-millisecond deadline in its input."""

from __future__ import annotations

import time


def seconds_left(deadline_ms: int) -> float:
    return deadline_ms / 1000 - time.time()
