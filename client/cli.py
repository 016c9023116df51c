"""The `arrayq` command line: run the service, and talk to it."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from arrayq.client._console import Connection

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
        for name in (
            "fastapi",
            "fastapi_offline",
            "uvicorn",
            "celery",
            "redis",
            "minio",
            "PIL",
            "pydantic_settings",
        )
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


# The client commands: they talk to a running API. --url and --api-key may come
# before the command (`arrayq --url U get ID`) or after it (`arrayq get ID --url U`).

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="ARRAYQ_URL", help="API base URL (default http://127.0.0.1:8000)"),
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="ARRAYQ_API_KEY", help="API key (Bearer)")
]
CommandUrl = Annotated[str | None, typer.Option("--url", help="API base URL")]
CommandApiKey = Annotated[str | None, typer.Option("--api-key", help="API key (Bearer)")]
JobId = Annotated[str, typer.Argument(help="a job id")]


@app.callback()
def connection(ctx: typer.Context, url: UrlOption = None, api_key: ApiKeyOption = None) -> None:
    """NumPy functions as an HTTP job service."""
    from arrayq.client._console import Connection

    ctx.obj = Connection(url, api_key)


def _connection(ctx: typer.Context, url: str | None, api_key: str | None) -> "Connection":
    """The options given after the command win over those given before it."""
    from arrayq.client._console import Connection

    before = ctx.obj or Connection(None, None)
    return Connection(url or before.url, api_key or before.api_key)


@app.command()
def ops(ctx: typer.Context, url: CommandUrl = None, api_key: CommandApiKey = None) -> None:
    """List the ops the service runs, with their params' defaults and constraints."""
    from arrayq.client._console import connect, ops_table, stdout

    with connect(_connection(ctx, url, api_key)) as client:
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
        typer.Option(
            "--input",
            "-i",
            help="name=@file.npy, name=[JSON list], or another job's result: "
            "name=job:ID, name=job:ID:OUTPUT, either with [SLICE] after it",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job to its end")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="resubmits return the first job")
    ] = None,
    cache: Annotated[
        bool | None, typer.Option("--cache/--no-cache", help="reuse an identical job's result")
    ] = None,
    ttl: Annotated[
        int | None, typer.Option("--ttl", min=1, help="seconds the job is kept once final")
    ] = None,
    callback: Annotated[
        str | None, typer.Option("--callback", help="URL the service POSTs the job to when done")
    ] = None,
    url: CommandUrl = None,
    api_key: CommandApiKey = None,
) -> None:
    """Submit a job and print its id."""
    from arrayq.client._console import connect, done_text, parse_inputs, parse_params, stderr

    params, inputs = parse_params(param or []), parse_inputs(input or [])
    options = {"cache": cache, "ttl_seconds": ttl, "callback": callback}
    with connect(_connection(ctx, url, api_key)) as client:
        job = client.submit(op, params, idempotency_key=idempotency_key, **options, **inputs)
        typer.echo(job.id)
        if wait:
            job.wait(progress=True)
            stderr().print(done_text(job.document), highlight=False)


@app.command()
def status(
    ctx: typer.Context, job_id: JobId, url: CommandUrl = None, api_key: CommandApiKey = None
) -> None:
    """Print a job's document (JSON)."""
    import json

    from arrayq.client._console import connect

    with connect(_connection(ctx, url, api_key)) as client:
        typer.echo(json.dumps(client.job(job_id).document, indent=2))


@app.command()
def wait(
    ctx: typer.Context,
    job_id: JobId,
    timeout: Annotated[float | None, typer.Option(min=0, help="give up after seconds")] = None,
    url: CommandUrl = None,
    api_key: CommandApiKey = None,
) -> None:
    """Follow a job to its end with a progress bar; exit 1 if it failed or was cancelled."""
    from arrayq.client._console import connect, done_text, stderr

    with connect(_connection(ctx, url, api_key)) as client:
        job = client.job(job_id).wait(timeout=timeout, progress=True)
        stderr().print(done_text(job.document), highlight=False)


@app.command()
def get(
    ctx: typer.Context,
    job_id: JobId,
    name: Annotated[
        str | None,
        typer.Argument(help="one output of a job with several (see `arrayq status ID`)"),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="write to this file: .npy, .png, or .npz for all outputs of a job with several",
        ),
    ] = None,
    slice: Annotated[
        str | None, typer.Option("--slice", help="only part of it, NumPy basic slicing: 0:10,::2")
    ] = None,
    url: CommandUrl = None,
    api_key: CommandApiKey = None,
) -> None:
    """Print a small result's values, or with -o write it to a file."""
    from arrayq.client._console import connect, fetch_values, print_values

    with connect(_connection(ctx, url, api_key)) as client:
        job = client.job(job_id)
        whole = name is None and slice is None
        target = job if whole else job.output(name or "result", slice)
        if file is not None:
            typer.echo(str(target.download(file, progress=True)))
        else:
            print_values(fetch_values(job, name, slice))


@app.command()
def cancel(
    ctx: typer.Context, job_id: JobId, url: CommandUrl = None, api_key: CommandApiKey = None
) -> None:
    """Cancel a queued or running job (a finished one is left as it is)."""
    from arrayq.client._console import connect

    with connect(_connection(ctx, url, api_key)) as client:
        job = client.job(job_id)
        if job.cancel():
            typer.echo(f"cancelled {job_id}")
        else:
            typer.echo(f"{job_id} had already {job.document['status']}: nothing to cancel")


@app.command()
def delete(
    ctx: typer.Context, job_id: JobId, url: CommandUrl = None, api_key: CommandApiKey = None
) -> None:
    """Delete a job and its results (cancelling it first if it is still going)."""
    from arrayq.client._console import connect

    with connect(_connection(ctx, url, api_key)) as client:
        client.job(job_id).delete()
        typer.echo(f"deleted {job_id}")


@app.command()
def jobs(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="only jobs in this status")] = None,
    op: Annotated[str | None, typer.Option("--op", help="only jobs of this op")] = None,
    limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
    url: CommandUrl = None,
    api_key: CommandApiKey = None,
) -> None:
    """List your jobs, newest first, in a table."""
    from arrayq.client._console import connect, jobs_table, stdout

    with connect(_connection(ctx, url, api_key)) as client:
        found = client.jobs(status=status, op=op, limit=min(limit, 1000))
        stdout().print(jobs_table(found, limit))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
