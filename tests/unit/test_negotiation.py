"""Result negotiation as a pure function: facts and a request in, a plan out."""

import pytest

from arrayq.api.negotiation import (
    Ask,
    File,
    Format,
    Inline,
    NotAcceptable,
    Npz,
    Redirect,
    Render,
    SeeOther,
    Sliced,
    Stream,
    choose_format,
    plan,
)
from arrayq.storage.errors import TooLarge
from arrayq.storage.results import (
    OutputFacts,
    ResultFacts,
    UnknownOutput,
    document_view,
    from_record,
)
from arrayq.storage.slicing import InvalidSlice

JOB = "0" * 32


def out(name="result", dtype="float64", shape=(4, 4), kind="array", png_key=None) -> OutputFacts:
    nbytes = 8 if dtype in ("float64", "int64") else 1
    for size in shape:
        nbytes *= size
    return OutputFacts(
        name, dtype, tuple(shape), nbytes, kind, key=f"k/{name}.npy", png_key=png_key
    )


def single(**kwargs) -> ResultFacts:
    facts = out(**kwargs)
    return ResultFacts(kind=facts.kind, outputs={"result": facts})


def several() -> ResultFacts:
    return ResultFacts(
        kind="outputs",
        outputs={"values": out("values", shape=(4,)), "vectors": out("vectors", shape=(4, 4))},
    )


def ask(fmt=Format.AUTO, **kwargs) -> Ask:
    return Ask(job_id=JOB, fmt=fmt, inline_max_bytes=1000, **kwargs)


def test_small_single_results_are_inline_and_large_ones_see_other():
    assert plan(single(), ask()) == Inline((out(),))
    large = single(shape=(100, 100))
    assert plan(large, ask()) == SeeOther(f"/jobs/{JOB}/result?format=npy")
    with pytest.raises(NotAcceptable) as refused:
        plan(large, ask(Format.JSON))
    assert refused.value.links == {
        "npy": f"/jobs/{JOB}/result?format=npy",
        "png": f"/jobs/{JOB}/result?format=png",
        "url": f"/jobs/{JOB}/result/url",
    }


def test_npy_is_a_file_locally_and_a_redirect_or_stream_on_s3():
    facts = single()
    assert plan(facts, ask(Format.NPY)) == File(out())
    assert plan(facts, ask(Format.NPY, local=False)) == Redirect(out())
    assert plan(facts, ask(Format.NPY, local=False, redirect=False)) == Stream(out())


def test_png_rule_in_one_place():
    assert plan(single(), ask(Format.PNG)) == Render(out(), "colormap")
    image = single(dtype="uint8", shape=(3, 4, 3), kind="image", png_key="k/result.png")
    assert plan(image, ask(Format.PNG)).mode == "stored"
    for facts in (single(shape=(4,)), single(dtype="complex128", shape=(2, 2))):
        with pytest.raises(NotAcceptable):
            plan(facts, ask(Format.PNG))
    assert "png" not in document_view(single(shape=(4,)), 1000)["formats"]
    assert document_view(single(), 1000)["formats"] == ["json", "npy", "png"]


def test_slices_are_planned_from_the_shape():
    chosen = plan(single(shape=(100, 100)), ask(slice_text="0:2"))
    assert isinstance(chosen, Sliced) and chosen.fmt == Format.NPY  # 1600 B: over 1000
    chosen = plan(single(shape=(100, 100)), ask(slice_text="0"))
    assert chosen.fmt == Format.JSON
    assert plan(single(shape=(100, 100)), ask(slice_text="0:50")).fmt == Format.NPY
    with pytest.raises(TooLarge):
        plan(single(shape=(100, 100)), ask(slice_text=":", max_slice_bytes=100))
    with pytest.raises(NotAcceptable):
        plan(single(shape=(100, 100)), ask(Format.PNG, slice_text="0"))  # 1-D
    assert plan(single(shape=(5, 5, 5)), ask(Format.PNG, slice_text="1")).png_mode == "colormap"


def test_several_outputs():
    facts = several()
    assert plan(facts, ask()) == Inline(tuple(facts.outputs.values()), several=True)
    assert plan(facts, ask(Format.NPZ)) == Npz(tuple(facts.outputs.values()))
    for fmt in (Format.NPY, Format.PNG):
        with pytest.raises(NotAcceptable) as refused:
            plan(facts, ask(fmt))
        assert refused.value.links["outputs"]["values"] == f"/jobs/{JOB}/outputs/values"
    with pytest.raises(InvalidSlice):
        plan(facts, ask(slice_text="0"))
    small = Ask(job_id=JOB, fmt=Format.AUTO, inline_max_bytes=100)
    assert plan(facts, small) == SeeOther(f"/jobs/{JOB}/result?format=npz")


def test_one_output_is_negotiated_like_a_single_result():
    facts = several()
    assert plan(facts, ask(output="vectors")) == Inline((facts.outputs["vectors"],))
    assert plan(facts, ask(Format.NPY, output="values")) == File(facts.outputs["values"])
    with pytest.raises(UnknownOutput):
        plan(facts, ask(output="nope"))
    with pytest.raises(NotAcceptable) as refused:
        plan(facts, ask(Format.PNG, output="values"))
    assert refused.value.links["url"] == f"/jobs/{JOB}/outputs/values/url"
    assert plan(single(), ask(output="result")) == Inline((out(),))


def test_nothing_acceptable_and_accept_headers():
    with pytest.raises(NotAcceptable):
        plan(single(), ask(None))
    assert choose_format(None, "application/x-npz") == Format.NPZ
    assert choose_format("npz", "application/json") == Format.NPZ
    assert choose_format(None, "text/html") is None


def test_records_from_before_outputs_read_as_one_output():
    legacy = {"dtype": "int64", "shape": [3], "nbytes": 24, "kind": "array", "formats": ["json"]}
    facts = from_record(legacy, tenant="t", job_id=JOB)
    assert not facts.multi and facts.outputs["result"].key.endswith(f"/{JOB}.npy")
    view = document_view(facts, 1000)
    assert view == {
        "dtype": "int64",
        "shape": [3],
        "nbytes": 24,
        "kind": "array",
        "formats": ["json", "npy"],
    }
