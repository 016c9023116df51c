"""Bounds on uploads in progress in this API process: per tenant (429 beyond),
and a thread limiter of their own for the short store calls they make, so
uploads never take Starlette's thread pool from the other routes."""

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from arrayq.storage.errors import TooManyUploads

STORE_THREADS = 8


class UploadSlots:
    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self._held: Counter[str] = Counter()
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """Made on first use, inside the event loop."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(STORE_THREADS)
        return self._limiter

    def in_progress(self, tenant: str) -> int:
        return self._held[tenant]

    @asynccontextmanager
    async def hold(self, tenant: str) -> AsyncIterator[None]:
        if self._held[tenant] >= self.per_tenant:
            raise TooManyUploads(
                f"{self.per_tenant} uploads of this tenant are in progress already "
                "(ARRAYQ_TENANT_MAX_UPLOADS); wait for one to finish"
            )
        self._held[tenant] += 1
        try:
            yield
        finally:
            self._held[tenant] -= 1
            if not self._held[tenant]:
                del self._held[tenant]
