"""ArrayJSON through the whole service, bit for bit: encoder -> POST /jobs ->
worker (.npy in storage) -> GET result as JSON -> decoder."""

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from arrayq.storage import codecs
from tests.support.jobs import wait_for

DTYPES = sorted(codecs.SUPPORTED_DTYPES)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    return draw(hnp.arrays(dtype, shape))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind not in "fc":
        return a.tobytes() == b.tobytes()
    # NaN payloads need not survive the text form; everything else, -0.0 included, must.
    parts = [(a.real, b.real), (a.imag, b.imag)] if a.dtype.kind == "c" else [(a, b)]
    return all(
        np.array_equal(x, y, equal_nan=True)
        and np.array_equal(np.signbit(x[~np.isnan(x)]), np.signbit(y[~np.isnan(y)]))
        for x, y in parts
    )


@pytest.fixture(scope="module")
def http(any_service):
    with any_service.client() as client:
        yield client


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(array=arrays(), base64=st.booleans())
def test_any_supported_array_round_trips_through_the_service(http: httpx.Client, array, base64):
    encode = codecs.encode_array_json_base64 if base64 else codecs.encode_array_json
    # cache off: hypothesis repeats examples, and each must go through a worker
    body = b'{"op": "identity", "cache": false, "inputs": {"x": ' + encode(array) + b"}}"
    submitted = http.post("/jobs", content=body, headers={"Content-Type": "application/json"})
    assert submitted.status_code == 202, submitted.text
    job = wait_for(http, submitted.json()["id"])
    assert job["status"] == "succeeded", job
    response = http.get(f"/jobs/{job['id']}/result", headers={"Accept": "application/json"})
    back = codecs.decode_array_json(orjson.loads(response.content), max_bytes=1 << 20)
    assert same_bits(array, back), (array, back)
