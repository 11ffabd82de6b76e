"""Keep freed tensor memory in the process heap (glibc), for CPU learners.

glibc serves allocations above `M_MMAP_THRESHOLD` (128 KiB at first) with fresh `mmap`
pages and gives free memory at the top of the heap back to the kernel above
`M_TRIM_THRESHOLD`. A CPU update allocates and frees dozens of such tensors (a
[2, 256, 256] float activation is 512 KiB), so each update pays page faults and zeroing
for memory it just returned: with eight such tensors alive at once, a ReLU over each took
~370 us instead of ~20 us on the 2-core VM this project is developed on. Raising both
thresholds lets the allocator reuse the memory, at the price of a heap that does not
shrink during training (as with jemalloc or tcmalloc, which ML stacks often preload).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 64 << 20  # tensors up to 64 MiB come from the heap
TRIM_THRESHOLD = 256 << 20  # keep up to 256 MiB of free heap

_done = False


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process; False where there is no
    glibc `mallopt` (macOS, Windows, musl), which changes nothing."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    _done = ok
    return ok
