"""What one full garbage collection costs per tracked object, in whichever Python runs this
(standard library only, so any interpreter can: `python3.13 -m bench.gc_versions`). Prints JSON.

The worker's full collections walk every object its cached workflow runs hold (bench.worker_gc);
this says whether another Python walks them faster. The heap is made of small records shaped
like parsed models (an instance, a list, a dict and a set each, pointing at one another), the
start-up heap frozen first as the worker freezes its own.

    python3.11 -m bench.gc_versions --millions 1 5
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time


class Record:
    def __init__(self, n: int, parent: Record | None) -> None:
        self.name = f"r{n}"
        self.values = [n, n + 1]
        self.fields = {"n": n}
        self.tags = {n}
        self.parent = parent  # a cycle now and then, as asyncio tasks and futures make


def tracked() -> int:
    return len(gc.get_objects())


def full_collection_cpu_ms(objects: int, repeats: int) -> dict[str, float]:
    before = tracked()
    heap: list[Record] = []
    parent = None
    while tracked() - before < objects:
        for n in range(10_000):
            record = Record(n, parent)
            parent = record if n % 100 else None
            heap.append(record)
    made = tracked() - before
    cpu = []
    for _ in range(repeats):
        started = time.thread_time()
        gc.collect()
        cpu.append(time.thread_time() - started)
    best = min(cpu)
    del heap
    gc.collect()
    return {
        "tracked_objects": made,
        "full_collection_cpu_ms": round(best * 1000, 1),
        "ns_per_object": round(best / made * 1e9, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--millions", type=float, nargs="+", default=[1.0, 5.0], help="tracked objects, in millions")
    parser.add_argument("--repeats", type=int, default=3, help="collections timed per size (the fastest is kept)")
    args = parser.parse_args()
    gc.collect()
    gc.freeze()
    runs = [full_collection_cpu_ms(int(m * 1_000_000), args.repeats) for m in args.millions]
    print(json.dumps({"python": sys.version.split()[0], "runs": runs}))


if __name__ == "__main__":
    main()
