"""Merging a partial benchmark run into RESULTS.md keeps the other sections."""

from bench.merge import merge_results

EXISTING = """# arrayq benchmarks

intro

## Machine

m

## Targets

| target | goal | measured | met? |
| --- | --- | --- | --- |
| 1. a | x | 1 | met |
| 3. c | x | 3 | met |
| 8. old | x | 0 | **missed** |

## 1. One

one

## 3. Three

three

## 8. Eight

old eight

## Why targets are missed

analysis
"""

PARTIAL = """# arrayq benchmarks

## Machine

new machine

## Targets

| target | goal | measured | met? |
| --- | --- | --- | --- |
| 8. new | x | 9 | met |

## 8. Eight

new eight
"""


def test_the_run_sections_replace_theirs_and_the_rest_stays():
    merged = merge_results(EXISTING, PARTIAL, "2026-12-02 00:00 UTC")
    assert "old eight" not in merged and "new eight" in merged
    assert "| 8. new | x | 9 | met |" in merged and "8. old" not in merged
    assert "| 1. a |" in merged and "three" in merged and "\nm\n" in merged
    assert merged.index("new eight") < merged.index("## Why targets")
    assert "Measured on 2026-12-02 00:00 UTC" in merged


def test_a_new_section_goes_after_the_lower_numbers():
    without = EXISTING.replace("## 8. Eight\n\nold eight\n\n", "")
    merged = merge_results(without, PARTIAL, "now")
    assert merged.index("three") < merged.index("new eight") < merged.index("analysis")
