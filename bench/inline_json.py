"""1. Inline JSON: ArrayJSON encode/decode against `json` of `.tolist()` and raw orjson."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from arrayq.storage import codecs
from bench.config import Plan
from bench.report import Section, Table, Target, ratio, spread
from bench.timing import Samples, time_calls, time_interleaved

ENCODE_SPEEDUP_TARGET = 50.0
ORJSON_SLOWDOWN_LIMIT = 1.1
LOADS_SLOWDOWN_LIMIT = 1.2
SIMD_SPEEDUP_TARGET = 2.0
DECODE_SPEEDUP_TARGET = 10.0
NAN_FRACTION = 0.01


@dataclass(frozen=True)
class Way:
    key: str
    name: str
    func: Callable[[], object]
    seldom: bool = False  # a slow way that adds little: timed alone, a third as often


def run(plan: Plan) -> Section:
    section = Section(
        "1. Inline JSON",
        "float64 standard-normal arrays. MB/s counts array bytes (8 per element) per second "
        "of CPU time of the calling thread (`time.thread_time`: these calls are single-"
        "threaded, and other load on a shared machine does not inflate it). The naive "
        "encoder is FastAPI's default `JSONResponse(a.tolist())` render (`json.dumps`); "
        "'naive route' adds the `jsonable_encoder` pass FastAPI runs when a route returns "
        "the list. The naive decoder is `np.array(json.loads(body))`. Raw orjson "
        "(`OPT_SERIALIZE_NUMPY`) is the lossy reference: it writes NaN as null. "
        f"'with NaN' arrays have {NAN_FRACTION:.0%} NaN, which ArrayJSON writes as \"NaN\".",
    )
    encode = Table(["elements", "encoder", "MB/s median (min-max)", "ms median", "vs naive"])
    decode = Table(["elements", "decoder", "MB/s median (min-max)", "ms median", "vs naive"])
    results: dict[tuple[str, int, str], Samples] = {}
    for size in plan.json_sizes:
        array = np.random.default_rng(size).standard_normal(size)
        _check_exact(array)
        _fill(encode, results, "encode", size, _encoders(array), plan)
        _fill(decode, results, "decode", size, _decoders(array), plan)
    section.tables += [encode, decode]
    section.targets = _targets(results, max(plan.json_sizes))
    section.notes.append(
        "Every arrayq encoding was decoded back and compared bit for bit with the original "
        "(NaN included) before timing."
    )
    return section


def _encoders(array: np.ndarray) -> list[Way]:
    with_nan = _with_nan(array)
    return [
        Way("naive", "naive: JSONResponse(a.tolist())", lambda: JSONResponse(array.tolist()).body),
        Way(
            "naive_route",
            "naive route: jsonable_encoder + JSONResponse",
            lambda: JSONResponse(jsonable_encoder(array.tolist())).body,
            seldom=True,
        ),
        Way("arrayq", "arrayq: encode_array_json", lambda: codecs.encode_array_json(array)),
        Way(
            "base64",
            "arrayq: encode_array_json_base64",
            lambda: codecs.encode_array_json_base64(array),
        ),
        Way(
            "base64_stdlib",
            "arrayq: encode_array_json_base64, stdlib base64 (no pybase64)",
            lambda: _stdlib(codecs.encode_array_json_base64, array),
        ),
        Way(
            "nan", "arrayq: encode_array_json, with NaN", lambda: codecs.encode_array_json(with_nan)
        ),
        Way(
            "reference",
            "reference: orjson.dumps(a, OPT_SERIALIZE_NUMPY)",
            lambda: orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY),
        ),
    ]


def _decoders(array: np.ndarray) -> list[Way]:
    naive_body = JSONResponse(array.tolist()).body
    body = codecs.encode_array_json(array)
    base64_body = codecs.encode_array_json_base64(array)
    nan_body = codecs.encode_array_json(_with_nan(array))
    limit = 1 << 40
    return [
        Way("naive", "naive: np.array(json.loads(body))", lambda: np.array(json.loads(naive_body))),
        Way(
            "arrayq",
            "arrayq: decode_array_json(orjson.loads(body))",
            lambda: codecs.decode_array_json(orjson.loads(body), max_bytes=limit),
        ),
        Way(
            "base64",
            "arrayq: base64 form",
            lambda: codecs.decode_array_json(orjson.loads(base64_body), max_bytes=limit),
        ),
        Way(
            "base64_stdlib",
            "arrayq: base64 form, stdlib base64 (no pybase64)",
            lambda: _stdlib(
                lambda: codecs.decode_array_json(orjson.loads(base64_body), max_bytes=limit)
            ),
        ),
        Way(
            "nan",
            "arrayq: with NaN",
            lambda: codecs.decode_array_json(orjson.loads(nan_body), max_bytes=limit),
        ),
        Way("reference", "reference: orjson.loads(body) alone", lambda: orjson.loads(body)),
    ]


def _fill(
    table: Table,
    results: dict[tuple[str, int, str], Samples],
    kind: str,
    size: int,
    ways: list[Way],
    plan: Plan,
) -> None:
    batch = max(1, plan.json_batch_elements // size)
    for way in ways:
        way.func()  # warm-up
    common = {way.key: way.func for way in ways if not way.seldom}
    measured = time_interleaved(common, plan.json_repeat, batch, clock=time.thread_time)
    for way in ways:
        if way.seldom:
            repeat = max(1, plan.json_repeat // 3)
            measured[way.key] = time_calls(way.func, repeat, clock=time.thread_time)
    naive = measured["naive"].median
    for way in ways:
        seconds = measured[way.key]
        results[(kind, size, way.key)] = seconds
        rate = seconds.map(lambda s: size * 8 / s / 1e6)
        table.add(
            f"{size:,}",
            way.name,
            spread(rate),
            f"{seconds.median * 1e3:.3g}",
            ratio(naive, seconds.median),
        )


def _targets(results: dict[tuple[str, int, str], Samples], size: int) -> list[Target]:
    naive_encode = results[("encode", size, "naive")].median
    arrayq_encode = results[("encode", size, "arrayq")].median
    raw = results[("encode", size, "reference")].median
    naive_decode = results[("decode", size, "naive")].median
    arrayq_decode = results[("decode", size, "arrayq")].median
    base64_encode = results[("encode", size, "base64")].median
    base64_decode = results[("decode", size, "base64")].median
    loads = results[("decode", size, "reference")].median
    stdlib_encode = results[("encode", size, "base64_stdlib")].median
    stdlib_decode = results[("decode", size, "base64_stdlib")].median
    at = f"at {size:,} elements"
    return [
        Target(
            "nested-list decode time vs orjson.loads alone " + at,
            f"<= {LOADS_SLOWDOWN_LIMIT}x",
            f"{arrayq_decode / loads:.2f}x",
            arrayq_decode / loads <= LOADS_SLOWDOWN_LIMIT,
        ),
        _speedup(
            "base64 encode, pybase64 vs stdlib " + at,
            stdlib_encode,
            base64_encode,
            SIMD_SPEEDUP_TARGET,
        ),
        _speedup(
            "base64 decode, pybase64 vs stdlib " + at,
            stdlib_decode,
            base64_decode,
            SIMD_SPEEDUP_TARGET,
        ),
        _speedup("encode vs naive " + at, naive_encode, arrayq_encode, ENCODE_SPEEDUP_TARGET),
        _speedup(
            "encode vs naive, base64 form " + at, naive_encode, base64_encode, ENCODE_SPEEDUP_TARGET
        ),
        Target(
            "encode time vs raw orjson " + at,
            f"<= {ORJSON_SLOWDOWN_LIMIT}x",
            f"{arrayq_encode / raw:.2f}x",
            arrayq_encode / raw <= ORJSON_SLOWDOWN_LIMIT,
        ),
        _speedup("decode vs naive " + at, naive_decode, arrayq_decode, DECODE_SPEEDUP_TARGET),
        _speedup(
            "decode vs naive, base64 form " + at, naive_decode, base64_decode, DECODE_SPEEDUP_TARGET
        ),
    ]


def _stdlib(func: Callable[..., object], *args: object) -> object:
    """`func` with the codecs' stdlib base64 fallback, as without pybase64."""
    simd, codecs._simd_base64 = codecs._simd_base64, None
    try:
        return func(*args)
    finally:
        codecs._simd_base64 = simd


def _speedup(what: str, naive: float, arrayq: float, goal: float) -> Target:
    return Target(what, f">= {goal:g}x", f"{naive / arrayq:.1f}x", naive / arrayq >= goal)


def _with_nan(array: np.ndarray) -> np.ndarray:
    spoiled = array.copy()
    spoiled[:: int(1 / NAN_FRACTION)] = np.nan
    return spoiled


def _check_exact(array: np.ndarray) -> None:
    for original in (array, _with_nan(array)):
        for encode in (codecs.encode_array_json, codecs.encode_array_json_base64):
            back = codecs.decode_array_json(orjson.loads(encode(original)), max_bytes=1 << 40)
            if back.tobytes() != original.tobytes():
                raise AssertionError(f"{encode.__name__} did not round-trip exactly")
