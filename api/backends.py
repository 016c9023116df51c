"""The long-lived clients of one API process, built from the settings at start-up."""

import secrets
from dataclasses import dataclass, field

import redis
import redis.asyncio
from celery import Celery

from arrayq.api.admission import UploadSlots
from arrayq.api.feed import JobFeed
from arrayq.storage import keys
from arrayq.storage.jobs import JobStore
from arrayq.storage.redis_client import connect, connect_async, translate_redis_errors
from arrayq.storage.settings import Settings
from arrayq.storage.stores import ObjectStore, store_from_settings
from arrayq.worker.celery_app import create_celery
from arrayq.worker.enqueue import release_sender
from arrayq.worker.ops import Op, load_ops

API_CLIENT_NAME = "arrayq-api"


@dataclass
class Backends:
    settings: Settings
    redis: redis.Redis
    aredis: redis.asyncio.Redis
    jobs: JobStore
    store: ObjectStore
    celery: Celery
    ops: dict[str, Op]
    feed: JobFeed
    upload_slots: UploadSlots
    _signing_secret: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Backends":
        client = connect(settings.redis_url, name=API_CLIENT_NAME)
        aredis = connect_async(settings.redis_url, name=API_CLIENT_NAME)
        backends = cls(
            settings=settings,
            redis=client,
            aredis=aredis,
            jobs=JobStore(
                client,
                ttl_seconds=settings.result_ttl_seconds,
                tombstone_ttl_seconds=settings.tombstone_ttl_seconds,
                max_active=settings.tenant_max_active,
                inline_max_bytes=settings.inline_max_bytes,
            ),
            store=store_from_settings(settings),
            celery=create_celery(settings),
            ops=load_ops(settings.ops_module_names()),
            feed=JobFeed(settings.redis_url, aredis, name=f"{API_CLIENT_NAME}-feed"),
            upload_slots=UploadSlots(settings.tenant_max_uploads),
        )
        backends.jobs.on_release = release_sender(backends.celery, settings)
        return backends

    def signing_secret(self) -> bytes:
        """The HMAC key of local download links, shared by every API replica."""
        if self._signing_secret is None:
            if self.settings.signing_key:
                self._signing_secret = self.settings.signing_key.encode()
            else:
                with translate_redis_errors():
                    self.redis.set(keys.signing_secret_key(), secrets.token_hex(32), nx=True)
                    self._signing_secret = self.redis.get(keys.signing_secret_key()).encode()
        return self._signing_secret

    async def close(self) -> None:
        await self.feed.close()
        await self.aredis.aclose()
        self.redis.close()
