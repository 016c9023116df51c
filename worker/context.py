"""The per-process worker context, built lazily in each pool process.

Redis connections must not cross a fork, so the context is made on first use
in the process that runs tasks, keyed by its pid.
"""

import os

from celery import current_app

from arrayq.storage.jobs import JobStore
from arrayq.storage.redis_client import connect
from arrayq.storage.settings import get_settings
from arrayq.storage.stores import store_from_settings
from arrayq.worker.celery_app import node_name
from arrayq.worker.enqueue import release_sender
from arrayq.worker.ops import load_ops
from arrayq.worker.runner import WorkerContext

_contexts: dict[int, WorkerContext] = {}


def worker_context() -> WorkerContext:
    pid = os.getpid()
    if pid not in _contexts:
        _contexts.clear()
        _contexts[pid] = build_context()
    return _contexts[pid]


def build_context() -> WorkerContext:
    settings = get_settings()
    load_ops(settings.ops_module_names())
    context = WorkerContext(
        settings=settings,
        jobs=JobStore(
            connect(settings.redis_url),
            ttl_seconds=settings.result_ttl_seconds,
            tombstone_ttl_seconds=settings.tombstone_ttl_seconds,
            max_active=settings.tenant_max_active,
            inline_max_bytes=settings.inline_max_bytes,
        ),
        store=store_from_settings(settings),
        worker_name=node_name(os.getppid()),  # the pool's parent is the worker's main process
    )
    context.jobs.on_release = release_sender(current_app, settings)
    return context
