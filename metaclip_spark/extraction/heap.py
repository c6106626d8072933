"""The extracting worker's heap: freed memory kept for the next page rather than handed back to the kernel.

glibc's malloc gives the free memory at the top of its heap back to the kernel once it passes M_TRIM_THRESHOLD, and
serves blocks over M_MMAP_THRESHOLD from mmap, unmapped when freed. Both start at 128 KiB, and glibc raises them
itself (up to 32 MiB and 64 MiB) only when it frees a block it had mmapped. Reading web archives, the heap's top rises
and falls by each page's parse tree: where the free top lands over the threshold it is trimmed, and the next page's
parse faults the same memory back in, each 4 KiB page zeroed by the kernel. Whether a worker's top lands there is a
matter of its heap's history: any change to what it allocates can move it. On bench's one-copy WARC read cold
(extraction/job.file_pairs, 40 reads), the project's commits faulted from 9 to 940 times per read, and commits that
changed no code moved it from 248 to 937; with the thresholds below, about 10 times on every commit, and 2% less CPU
than the same tree without them (docs/scaling.md, "Page signals").

keep_freed_heap() fixes both thresholds at the values glibc's own adjustment reaches after freeing a 32 MiB block:
blocks under 32 MiB come from the heap, and up to 64 MiB of free heap top is kept for reuse. The worker's output is
the same; its resident memory may stay up to 64 MiB above its live data. Nothing is done where the C library is not
glibc, or where the user set either threshold (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, read by glibc at start).
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what glibc sets beside it
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")

_settled: bool | None = None  # what keep_freed_heap did in this process (None: not asked yet)


def keep_freed_heap() -> bool:
    """Fix this process's malloc thresholds as the module says, once; whether they are now fixed by it."""
    global _settled
    if _settled is None:
        _settled = _set_thresholds()
    return _settled


def _set_thresholds() -> bool:
    if not _glibc() or any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # (mallopt returns 1 on success. Both are set: setting either stops glibc's own adjustment of the other, and a trim
    # threshold set alone would leave blocks over 128 KiB to mmap, unmapped at every free)
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # (a platform without the name, or without confstr)
        return False
