"""OpenAPI schemas of what `POST /jobs` accepts, built from the op registry.

The route parses its body itself (to bound its size), so FastAPI cannot derive
the schema. Declaring one variant per op, with that op's params schema and
input names, lets clients and schema-driven tools (docs, fuzzers) build bodies
that are actually accepted.
"""

from collections.abc import Iterable
from typing import Any

from arrayq.api.schemas import JobRef
from arrayq.storage import codecs
from arrayq.worker.ops import Op

_REF = "#/components/schemas/{model}"
_ARRAY_OR_UPLOAD = {
    "oneOf": [
        {"$ref": "#/components/schemas/ArrayInput"},
        {"$ref": "#/components/schemas/UploadRef"},
        {"$ref": "#/components/schemas/JobRef"},
    ]
}


ERROR_BODY = {
    "title": "Error",
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            "required": ["type", "message"],
        },
        "details": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["error"],
}


def arrayq_components(ops: Iterable[Op]) -> dict[str, dict[str, Any]]:
    """Components to add to (or replace in) FastAPI's generated schema. FastAPI
    documents its 422 as `HTTPValidationError`; ours is the common error body."""
    return {"HTTPValidationError": ERROR_BODY, **job_request_components(ops)}


def job_request_components(ops: Iterable[Op]) -> dict[str, dict[str, Any]]:
    """Component schemas: `JobRequest` as one variant per op, the params models
    they refer to, and `ArrayInput` narrowed to the supported dtypes and shapes."""
    components: dict[str, dict[str, Any]] = {
        "ArrayInput": array_input_schema(),
        "JobRef": JobRef.model_json_schema(),
    }
    variants = []
    for op in sorted(ops, key=lambda o: o.name):
        params = op.params.model_json_schema(ref_template=_REF)
        components.update(params.pop("$defs", {}))
        variants.append(_variant(op, params))
    components["JobRequest"] = {"title": "JobRequest", "oneOf": variants}
    return components


def _variant(op: Op, params: dict[str, Any]) -> dict[str, Any]:
    inputs = {
        "type": "object",
        "properties": {name: _ARRAY_OR_UPLOAD for name in op.inputs},
        "required": list(op.inputs),
        "additionalProperties": False,
    }
    return {
        "title": f"JobRequest[{op.name}]",
        "type": "object",
        "properties": {"op": {"const": op.name}, "params": params, "inputs": inputs},
        "required": ["op", "inputs"] if op.inputs else ["op"],
        "additionalProperties": False,
    }


def array_input_schema() -> dict[str, Any]:
    return {
        "title": "ArrayInput",
        "description": "An array in JSON: nested `data` lists or raw little-endian `base64` bytes.",
        "type": "object",
        "properties": {
            "dtype": {"enum": sorted(codecs.SUPPORTED_DTYPES)},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "maxItems": codecs.MAX_NDIM,
            },
            "data": {},
            "base64": {"type": "string"},
        },
        "required": ["dtype", "shape"],
        "additionalProperties": False,
    }
