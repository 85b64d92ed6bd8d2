"""The serving layer without HTTP: what a live service process knows and does.

- :mod:`.live_index`: :class:`LiveIndex`, the one object a process serves through (reads, writes, reload);
- :mod:`.versions`: which version is served, hot reload, and why not (:class:`ServedVersion`);
- :mod:`.writes`: live changes through the change log, in order, and catching up on other processes' writes;
- :mod:`.snapshot`: a loaded version plus its live changes, and the lock that owns its changes;
- :mod:`.cache`: the response cache and ETags; :mod:`.payloads`: the JSON documents answered and cached.
"""

from ..errors import NotReadyError, ReloadFailedError
from .cache import RelatedResult, ResponseCache, etag
from .live_index import SERVICE_BATCH_SIZE, LiveIndex
from .payloads import article_dict, related_payload, summary_dict
from .snapshot import ReadWriteLock, Snapshot
from .versions import ReloadResult, ServedVersion
from .writes import LiveWrites

__all__ = [
    "SERVICE_BATCH_SIZE",
    "LiveIndex",
    "LiveWrites",
    "NotReadyError",
    "ReadWriteLock",
    "RelatedResult",
    "ReloadFailedError",
    "ReloadResult",
    "ResponseCache",
    "ServedVersion",
    "Snapshot",
    "article_dict",
    "etag",
    "related_payload",
    "summary_dict",
]
