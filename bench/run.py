"""Benchmarks: each measured against a baseline taken in the same run.

    python bench/run.py [--json] [--only NAME ...]

Prints, per benchmark, the time per operation of the subject and of its
baseline and their ratio; the ratio is what to compare between machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable
from typing import Any

from gunyah import HYP_IDENTIFY, Conduit, Hypervisor, identify


def per_op(fn: Callable[[], object], number: int, repeat: int = 7) -> float:
    """Best-of-`repeat` seconds per call: the least disturbed estimate on a shared machine."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def bench_model() -> list[dict[str, Any]]:
    def bare() -> tuple[int, int, int, int]:
        return (0x5100000000008001, 0x10000FFF, 0, 0)

    hyp = Hypervisor("gunyah")
    conduit = Conduit(hyp)
    # every subject and baseline is timed through a lambda, so the ratio
    # compares the work, not timeit's way of calling it
    base = per_op(lambda: bare(), 200_000)
    call = per_op(lambda: hyp.call(HYP_IDENTIFY), 200_000)
    full = per_op(lambda: identify(conduit), 20_000)
    return [
        {"name": "model-call", "subject": "Hypervisor.call(HYP_IDENTIFY)", "seconds": call,
         "baseline": "bare function returning four ints", "baseline_seconds": base,
         "ratio": call / base, "target": "<= 10"},
        {"name": "identify", "subject": "guest identify() over a Conduit", "seconds": full,
         "baseline": "bare function returning four ints", "baseline_seconds": base,
         "ratio": full / base, "target": None},
    ]


BENCHES: dict[str, Callable[[], list[dict[str, Any]]]] = {"model": bench_model}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    ap.add_argument("--only", nargs="+", choices=list(BENCHES), help="run only these groups")
    args = ap.parse_args(argv)
    rows = [row for name in (args.only or BENCHES) for row in BENCHES[name]()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        target = f"  (target {r['target']})" if r["target"] else ""
        print(f"{r['name']:<14} {r['seconds'] * 1e6:9.3f} us  vs {r['baseline']}: "
              f"{r['baseline_seconds'] * 1e6:.3f} us  ratio {r['ratio']:.1f}x{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
