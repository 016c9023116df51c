"""The naive ways of serving and accepting `.npy` files with FastAPI, and the
plainest streaming upload as a reference, to compare arrayq with.

Files are named relative to the folder in `BENCH_COMPARE_ROOT`.
"""

import io
import os
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

NPY = "application/x-npy"

app = FastAPI()


def _root() -> Path:
    return Path(os.environ["BENCH_COMPARE_ROOT"]).resolve()


def _file(name: str) -> Path:
    root = _root()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        raise HTTPException(404)
    return path


@app.get("/bytes/{name}")
def whole_bytes(name: str) -> Response:
    """The whole file read into memory, sent as one body."""
    return Response(_file(name).read_bytes(), media_type=NPY)


@app.get("/stream/{name}")
def stream_bytesio(name: str) -> StreamingResponse:
    """The whole file read into memory, streamed from a BytesIO (which iterates by lines)."""
    return StreamingResponse(io.BytesIO(_file(name).read_bytes()), media_type=NPY)


@app.post("/upload/{name}", status_code=201)
async def upload(name: str, request: Request) -> dict[str, object]:
    """The whole body in memory, parsed with np.load, saved with np.save."""
    body = await request.body()
    array = np.load(io.BytesIO(body), allow_pickle=False)
    np.save(_root() / Path(name).name, array, allow_pickle=False)
    return {"dtype": array.dtype.name, "shape": list(array.shape), "nbytes": array.nbytes}


@app.post("/sink/{name}", status_code=201)
async def sink(name: str, request: Request) -> dict[str, int]:
    """The body streamed to a file as it arrives, unparsed: the floor for an ASGI upload."""
    written = 0
    with (_root() / Path(name).name).open("wb") as target:
        async for chunk in request.stream():
            written += target.write(chunk)
    return {"nbytes": written}
