"""The public surface of the `client` package does not drift, and the sync
client is what `_unasync.py` makes of the async one."""

import types

import arrayq
from arrayq import client
from arrayq.client import ArrayqError, _unasync

CLASSES = {"AsyncClient", "AsyncJob", "AsyncOutput", "Client", "Job", "Output"}
FUNCTIONS = {"verify_signature"}
ERRORS = {
    "ArrayqError",
    "BadRequest",
    "Expired",
    "JobCancelled",
    "JobFailed",
    "NotFound",
    "ServiceUnavailable",
    "Timeout",
    "Unauthorized",
    "ValidationError",
}
PUBLIC = CLASSES | FUNCTIONS | ERRORS
PAIRS = (
    (client.Client, client.AsyncClient),
    (client.Job, client.AsyncJob),
    (client.Output, client.AsyncOutput),
)


def test_all_lists_exactly_the_public_names() -> None:
    assert set(client.__all__) == PUBLIC
    assert len(client.__all__) == len(PUBLIC)


def test_the_package_root_exports_the_same_names() -> None:
    assert set(arrayq.__all__) == PUBLIC
    assert all(getattr(arrayq, name) is getattr(client, name) for name in PUBLIC)


def test_no_other_public_name_besides_submodules() -> None:
    names = {
        name
        for name, value in vars(client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert names == PUBLIC


def test_every_error_is_an_arrayq_error() -> None:
    for name in ERRORS:
        assert issubclass(getattr(client, name), ArrayqError), name
    assert issubclass(client.ValidationError, client.BadRequest)
    assert issubclass(client.Expired, client.NotFound)


def test_sync_and_async_have_the_same_surface() -> None:
    for sync, asynchronous in PAIRS:
        assert _public(sync) - {"close"} == _public(asynchronous) - {"aclose"}


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    generated = _unasync.generate(_unasync.SOURCE.read_text())
    assert _unasync.TARGET.read_text() == generated, (
        "client/_client.py is stale: run python -m arrayq.client._unasync (make unasync)"
    )


def test_generation_turns_async_lines_into_sync_ones() -> None:
    assert _unasync.unasync_line("        return (await job.result()).shape\n") == (
        "        return job.result().shape\n"
    )
    assert _unasync.unasync_line("f(await g(x))") == "f(g(x))"
    assert _unasync.unasync_line("async with AsyncClient(url) as c:") == "with Client(url) as c:"
    assert _unasync.unasync_line("[j async for j in c.jobs()]") == "[j for j in c.jobs()]"
    assert _unasync.unasync_line("await r.aclose()") == "r.close()"


def _public(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_public_classes_and_methods_have_docstrings_with_an_example() -> None:
    for name in CLASSES:
        cls = getattr(client, name)
        assert ">>>" in (cls.__doc__ or ""), cls
        for method in _public(cls) - {"close", "aclose", "id", "refresh"}:
            assert ">>>" in (getattr(cls, method).__doc__ or ""), f"{cls.__name__}.{method}"
    for name in FUNCTIONS:
        assert ">>>" in (getattr(client, name).__doc__ or ""), name
