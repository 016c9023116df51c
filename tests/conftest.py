from collections.abc import Iterator

import pytest

from tests.support.service import Service, start_service


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A real Redis, two real worker processes and a real API, on free ports."""
    running = start_service(tmp_path_factory.mktemp("arrayq"))
    try:
        yield running
    finally:
        running.stop()
