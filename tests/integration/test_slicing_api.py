"""GET /jobs/{id}/result?slice=...: sub-arrays in every format, on both stores."""

import io

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from arrayq.storage import codecs
from tests.support.jobs import run

SHAPE = [300, 40, 3]


@pytest.fixture(scope="module")
def http(any_service):
    with any_service.client(follow_redirects=True) as client:
        yield client


@pytest.fixture(scope="module")
def stored(http) -> tuple[str, np.ndarray]:
    job = run(http, "random", {"shape": SHAPE, "seed": 11})
    return job["id"], np.random.default_rng(11).standard_normal(SHAPE)


bound = st.one_of(st.none(), st.integers(-320, 320))
part = st.one_of(
    st.integers(-3, 2).map(str),
    st.tuples(bound, bound, st.one_of(st.none(), st.integers(-5, 5).filter(bool))).map(
        lambda t: ":".join("" if v is None else str(v) for v in t)
    ),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(part, min_size=1, max_size=3))
def test_slices_match_numpy(http: httpx.Client, stored, parts):
    job_id, array = stored
    text = ",".join(parts)
    response = http.get(f"/jobs/{job_id}/result", params={"slice": text, "format": "npy"})
    try:
        expected = array[tuple(_python_index(p) for p in parts)]
    except IndexError:
        assert response.status_code == 422
        return
    assert response.status_code == 200, response.text
    assert int(response.headers["content-length"]) == len(response.content)
    np.testing.assert_array_equal(np.load(io.BytesIO(response.content)), expected)


def _python_index(part: str) -> int | slice:
    if ":" not in part:
        return int(part)
    return slice(*(int(v) if v else None for v in part.split(":")))


def test_slice_as_json_and_png(http, stored):
    job_id, array = stored
    response = http.get(f"/jobs/{job_id}/result", params={"slice": "0:5,:,1"})
    assert response.headers["content-type"] == "application/json"
    got = codecs.decode_array_json(orjson.loads(response.content), max_bytes=1 << 20)
    np.testing.assert_array_equal(got, array[0:5, :, 1])
    png = http.get(f"/jobs/{job_id}/result", params={"slice": "::2,:,0", "format": "png"})
    assert png.status_code == 200
    assert Image.open(io.BytesIO(png.content)).size == (40, 150)


@pytest.mark.parametrize("text", ["abc", "0:1,0:1,0:1,0:1", "400", "::0", "os.system('x')"])
def test_bad_slices_are_422(http, stored, text):
    response = http.get(f"/jobs/{stored[0]}/result", params={"slice": text})
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_slice"
