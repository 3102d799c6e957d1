"""Hypercall traces: read them fast, decode every call with the `decode` decoder.

One module per format, each sniffing and parsing its own: `ftrace` (arm64
KVM's kvm_hvc_arm64/kvm_smc_arm64 tracepoints), `jsonl`, `csvfile`, `runlog`
(what `gunyah run --trace` prints); `source` opens a trace (a file, `-`,
gzip) and asks each format's rule in turn; `lines` is what the line formats
share; `calls` what every reader yields and the keys calls are counted by; `count`
counts them.

ftrace, the format that runs to gigabytes, is taken in 4 MiB blocks
(`blocks`), so memory stays flat. `stats` counts calls with the compiled
scanner (`_ftrace.c`, built at install; `scan`) on worker threads, a block
each: a plain file is mapped and its pages let go behind the scan, a pipe or
gzip is read into a buffer per worker. `decode`, and `stats` where the
scanner was not built, parse with numpy (`ftrace.parse_ftrace`). Both read
the same grammar (a property test holds them to it). Names are looked up
once per distinct call.
"""

from .calls import (
    MAX_DISTINCT,
    MAX_MALFORMED_SHOWN,
    NO_CPU,
    OTHERS,
    Calls,
    Malformed,
    TraceError,
    call_key,
    call_name,
)
from .count import Stats, iter_calls, stats
from .ftrace import parse_ftrace
from .scan import scanner
from .source import FORMATS, GZIP_MAGIC, open_trace, sniff

__all__ = [
    "FORMATS", "GZIP_MAGIC", "MAX_DISTINCT", "MAX_MALFORMED_SHOWN", "NO_CPU", "OTHERS", "Calls",
    "Malformed", "Stats", "TraceError", "call_key", "call_name", "iter_calls", "open_trace",
    "parse_ftrace", "scanner", "sniff", "stats",
]  # fmt: skip
