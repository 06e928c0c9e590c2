"""Full-jitter exponential backoff, drawn from OS entropy.

Not `random`'s state, which SnapStart would clone into every restored container, so restored containers that
were throttled together would retry together.
"""

from __future__ import annotations

import secrets

_JITTER = secrets.SystemRandom()


def full_jitter(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry `attempt` (0-based): uniform in [0, min(cap, base * 2**attempt)]."""
    return _JITTER.uniform(0, min(cap, base * 2**attempt))
