"""The `arrayq` command line: run the service, and talk to it."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="arrayq",
    help="NumPy functions as an HTTP job service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def require_server_extra() -> None:
    """`up`, `api` and `worker` need the service's packages, which the base install lacks."""
    import importlib.util

    missing = [
        name
        for name in ("fastapi", "uvicorn", "celery", "redis", "minio", "PIL", "pydantic_settings")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        typer.echo(
            f"arrayq: this command runs the service, which needs the 'server' extra "
            f"(missing: {', '.join(missing)}). Install it with: pip install 'arrayq[server]'",
            err=True,
        )
        raise typer.Exit(2)


@app.command()
def up(
    workers: Annotated[int, typer.Option(min=1, help="Celery worker processes")] = 2,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="Interface the API listens on")] = "127.0.0.1",
) -> None:
    """Run Redis (unless ARRAYQ_REDIS_URL is set), workers and the API on this machine."""
    require_server_extra()
    from arrayq.client.up import run_up

    run_up(workers=workers, port=port, host=host, echo=typer.echo)


@app.command()
def api(
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Run the API alone (uvicorn)."""
    require_server_extra()
    from arrayq.api.server import serve

    serve(host=host, port=port, workers=workers)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="pool processes")] = 1,
    queues: Annotated[str, typer.Option(help="comma-separated queues")] = "default,long",
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run one Celery worker (node name arrayq-<pid>@host)."""
    require_server_extra()
    from arrayq.worker.main import run_worker

    run_worker(concurrency=concurrency, queues=queues, loglevel=loglevel)


# The client commands: they talk to a running API.

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="ARRAYQ_URL", help="API base URL (default http://127.0.0.1:8000)"),
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="ARRAYQ_API_KEY", help="API key (Bearer)")
]
JobId = Annotated[str, typer.Argument(help="a job id")]


@app.callback()
def connection(ctx: typer.Context, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """NumPy functions as an HTTP job service."""
    from arrayq.client._console import Connection

    ctx.obj = Connection(url, api_key)


@app.command()
def ops(ctx: typer.Context) -> None:
    """List the ops the service runs."""
    from arrayq.client._console import connect, ops_table, stdout

    with connect(ctx.obj) as client:
        stdout().print(ops_table(client.ops()))


@app.command()
def submit(
    ctx: typer.Context,
    op: Annotated[str, typer.Argument(help="the op, e.g. matmul")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="k=v; v is read as JSON, else text")
    ] = None,
    input: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="name=@file.npy, or name=[JSON list]"),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job to its end")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="resubmits return the first job")
    ] = None,
) -> None:
    """Submit a job and print its id."""
    from arrayq.client._console import connect, done_text, parse_inputs, parse_params, stderr

    params, inputs = parse_params(param or []), parse_inputs(input or [])
    with connect(ctx.obj) as client:
        job = client.submit(op, params, idempotency_key=idempotency_key, **inputs)
        typer.echo(job.id)
        if wait:
            job.wait(progress=True)
            stderr().print(done_text(job.document), highlight=False)


@app.command()
def status(ctx: typer.Context, job_id: JobId) -> None:
    """Print a job's document (JSON)."""
    import json

    from arrayq.client._console import connect

    with connect(ctx.obj) as client:
        typer.echo(json.dumps(client.job(job_id).document, indent=2))


@app.command()
def wait(
    ctx: typer.Context,
    job_id: JobId,
    timeout: Annotated[float | None, typer.Option(min=0, help="give up after seconds")] = None,
) -> None:
    """Follow a job to its end with a progress bar; exit 1 if it failed or was cancelled."""
    from arrayq.client._console import connect, done_text, stderr

    with connect(ctx.obj) as client:
        job = client.job(job_id).wait(timeout=timeout, progress=True)
        stderr().print(done_text(job.document), highlight=False)


@app.command()
def get(
    ctx: typer.Context,
    job_id: JobId,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="a .npy or .png file [default: ID.npy]")
    ] = None,
) -> None:
    """Download a job's result, as .npy or (for a .png path) PNG."""
    from arrayq.client._console import connect

    with connect(ctx.obj) as client:
        saved = client.job(job_id).download(output or Path(f"{job_id}.npy"), progress=True)
        typer.echo(str(saved))


@app.command()
def cancel(ctx: typer.Context, job_id: JobId) -> None:
    """Cancel a queued or running job (on a finished one: delete its result)."""
    from arrayq.client._console import connect

    with connect(ctx.obj) as client:
        job = client.job(job_id)
        ended = job.document["status"] in ("succeeded", "failed", "cancelled")
        job.cancel()
        typer.echo(f"{'deleted' if ended else 'cancelled'} {job_id}")


@app.command()
def jobs(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="only jobs in this status")] = None,
    op: Annotated[str | None, typer.Option("--op", help="only jobs of this op")] = None,
    limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
) -> None:
    """List your jobs, newest first, in a table."""
    from arrayq.client._console import connect, jobs_table, stdout

    with connect(ctx.obj) as client:
        found = client.jobs(status=status, op=op, limit=min(limit, 1000))
        stdout().print(jobs_table(found, limit))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
