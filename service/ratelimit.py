"""Per-client rate limits for public write routes (events): a token bucket per client IP, in memory.

Each client gets ``burst`` tokens that refill at ``rate`` per second; a request costs one token per event it
carries (at least one). A request the bucket cannot pay for is refused whole (429, with the seconds until it could
be paid in ``Retry-After``), and costs nothing. The table of buckets is bounded: past ``max_clients`` the least
recently seen client is forgotten (it comes back with a full bucket, which is the state it would have refilled to).

Behind a reverse proxy, the client is the proxy unless uvicorn is told to trust its ``X-Forwarded-For``
(``FORWARDED_ALLOW_IPS``, default 127.0.0.1: a proxy on the same machine is trusted).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["TokenBuckets"]


class TokenBuckets:
    def __init__(
        self, rate: float, burst: int, *, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()
        #: requests refused since start
        self.refused = 0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str, cost: int) -> float:
        """0 when ``client`` may spend ``cost`` tokens now (they are spent), else the seconds to wait (nothing is
        spent). A cost above the burst is charged as the burst: a whole bucket pays for the largest batch."""
        if not self.enabled:
            return 0.0
        cost = max(1, min(cost, self.burst))
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= cost:
                tokens -= cost
                wait = 0.0
            else:
                wait = (cost - tokens) / self.rate
                self.refused += 1
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> str:
        """``Retry-After`` in whole seconds, at least 1."""
        return str(max(1, math.ceil(wait)))
