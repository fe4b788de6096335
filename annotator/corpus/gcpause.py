"""Pausing Python's cyclic garbage collector around bulk work."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Imports and exports create millions of objects that live until the end; the cyclic collector would
    rescan them again and again (a third of an import's time, measured with bench/ingest.py) and free
    nothing. Reference counting still frees everything as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
