"""The `arrayq` command line: run the service, and talk to it."""

from typing import Annotated

import typer

app = typer.Typer(
    name="arrayq",
    help="NumPy functions as an HTTP job service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def up(
    workers: Annotated[int, typer.Option(min=1, help="Celery worker processes")] = 2,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Interface the API listens on")] = "127.0.0.1",
) -> None:
    """Run Redis (unless ARRAYQ_REDIS_URL is set), workers and the API on this machine."""
    from client.up import run_up

    run_up(workers=workers, port=port, host=host, echo=typer.echo)


@app.command()
def api(
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Run the API alone (uvicorn)."""
    from api.server import serve

    serve(host=host, port=port, workers=workers)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="pool processes")] = 1,
    queues: Annotated[str, typer.Option(help="comma-separated queues")] = "default,long",
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run one Celery worker (node name arrayq-<pid>@host)."""
    from worker.main import run_worker

    run_worker(concurrency=concurrency, queues=queues, loglevel=loglevel)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
