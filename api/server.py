"""Running the API with uvicorn."""

import uvicorn

from arrayq.api.app import create_app


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    if workers > 1:
        uvicorn.run(
            "arrayq.api.server:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=True,
        )
    else:
        uvicorn.run(create_app(), host=host, port=port, proxy_headers=True)


def app_factory():
    return create_app()
