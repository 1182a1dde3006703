"""Choose the device once, at the edge, and pass it down; tune the CPU runtime once per process."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

_TUNED = False


def pick_device(name: str | None = None) -> torch.device:
    """`name` ("cpu", "cuda", "cuda:1", "mps") or $BIRDANIM_DEVICE, else CUDA when present, else CPU."""
    name = name or os.environ.get("BIRDANIM_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tune_allocator() -> bool:
    """Keep freed memory in the process instead of returning it to the kernel (glibc only).

    glibc serves allocations above ~128 KB-32 MB with fresh mmap()s and unmaps them on free, so
    every large activation tensor is page-faulted in again, zeroed by the kernel: on this 2-core
    machine elementwise ops ran 3-8x slower and `top` showed ~60% system time. Disabling mmap for
    malloc and raising the trim threshold lets the heap reuse the pages. Returns True if applied.
    """
    global _TUNED
    if _TUNED or not sys.platform.startswith("linux") or os.environ.get("BIRDANIM_NO_MALLOPT"):
        return _TUNED
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, ...): nothing to do
        return False
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
    ok = libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, 2**31 - 1) and libc.mallopt(m_top_pad, 2**28)
    _TUNED = bool(ok)
    return _TUNED


def set_cpu_threads(n: int | None = None) -> int:
    """Use all cores for intra-op work and tune the allocator; call once from an entry point."""
    n = n or int(os.environ.get("BIRDANIM_THREADS", 0)) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    tune_allocator()
    return n
