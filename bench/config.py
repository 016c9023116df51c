"""How big and how often: the full suite, or the quick one CI runs."""

from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class Plan:
    quick: bool
    json_sizes: tuple[int, ...]
    json_repeat: int
    # Single calls on small arrays are too short to time alone: each sample times
    # a batch of calls that together touch about this many elements.
    json_batch_elements: int
    download_runs: tuple[tuple[int, int], ...]  # (file bytes, timed runs of each way)
    # StreamingResponse(BytesIO) is measured for this long rather than to the end.
    stream_cap_seconds: float
    sequential_jobs: int
    queued_jobs: int
    bare_round_trips: int
    upload_bytes: int
    upload_repeat: int
    png_side: int
    png_repeat: int
    # 7. cost as work grows: jobs of one tenant, requests per size, jobs for memory
    scale_sizes: tuple[int, ...] = (100, 10_000, 100_000)
    scale_requests: int = 30
    scale_memory_jobs: int = 2_000
    # 9. against the peers: sequential jobs of each kind, jobs queued for the drains
    # (the template takes about 3 s for each 1e6-float job)
    peer_sequential_noops: int = 200
    peer_sequential_floats: int = 50
    peer_queued_noops: int = 500
    peer_queued_floats: int = 20


FULL = Plan(
    quick=False,
    json_sizes=(1_000, 100_000, 1_000_000),
    json_repeat=7,
    json_batch_elements=1_000_000,
    download_runs=((100 * MIB, 5), (1024 * MIB, 3)),
    stream_cap_seconds=10.0,
    sequential_jobs=500,
    queued_jobs=5_000,
    bare_round_trips=500,
    upload_bytes=1024 * MIB,
    upload_repeat=3,
    png_side=2048,
    png_repeat=3,
)

QUICK = Plan(
    quick=True,
    json_sizes=(1_000, 100_000),
    json_repeat=1,
    json_batch_elements=10_000,
    download_runs=((16 * MIB, 1),),
    stream_cap_seconds=2.0,
    sequential_jobs=10,
    queued_jobs=100,
    bare_round_trips=10,
    upload_bytes=16 * MIB,
    upload_repeat=1,
    png_side=512,
    png_repeat=1,
    scale_sizes=(100, 1_000),
    scale_requests=3,
    scale_memory_jobs=100,
    peer_sequential_noops=5,
    peer_sequential_floats=3,
    peer_queued_noops=20,
    peer_queued_floats=0,
)
