"""The public surface of the `client` package does not drift."""

import types

from arrayq import client
from arrayq.client import ArrayqError

PUBLIC = {
    "ArrayqError",
    "AsyncClient",
    "AsyncJob",
    "BadRequest",
    "Client",
    "Job",
    "JobCancelled",
    "JobFailed",
    "NotFound",
    "ServiceUnavailable",
    "Timeout",
    "Unauthorized",
    "ValidationError",
}
ERRORS = PUBLIC - {"AsyncClient", "AsyncJob", "Client", "Job"}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(client.__all__) == PUBLIC
    assert len(client.__all__) == len(PUBLIC)


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


def test_sync_and_async_have_the_same_surface() -> None:
    for sync, asynchronous in ((client.Client, client.AsyncClient), (client.Job, client.AsyncJob)):
        assert _public(sync) - {"close"} == _public(asynchronous) - {"aclose"}


def _public(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_public_classes_and_methods_have_docstrings_with_an_example() -> None:
    for cls in (client.Client, client.AsyncClient, client.Job, client.AsyncJob):
        assert ">>>" in (cls.__doc__ or ""), cls
        for name in _public(cls) - {"close", "aclose", "id", "refresh"}:
            assert ">>>" in (getattr(cls, name).__doc__ or ""), f"{cls.__name__}.{name}"
