from collections.abc import Iterator

import pytest

from tests.support.seaweed import S3Server, seaweed_s3
from tests.support.service import Service, start_service


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A real Redis, two real worker processes and a real API, on free ports,
    with results in a local folder."""
    running = start_service(tmp_path_factory.mktemp("arrayq"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real SeaweedFS S3 server on free ports."""
    with seaweed_s3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Service]:
    """The same service with results in the S3 server; presigned URLs are signed
    for a public endpoint spelled differently from the internal one."""
    public = s3_server.endpoint.replace("127.0.0.1", "localhost")
    running = start_service(
        tmp_path_factory.mktemp("arrayq-s3"),
        storage_url=s3_server.url("arrayq"),
        extra_env={"ARRAYQ_S3_PUBLIC_ENDPOINT": public},
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module", params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def any_service(request: pytest.FixtureRequest) -> Service:
    """The end-to-end suite runs once per store."""
    return request.getfixturevalue("service" if request.param == "local" else "s3_service")
