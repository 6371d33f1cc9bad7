"""sms.ru's per-request cap and the batching helper callers use to respect it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

MAX_RECIPIENTS = 100  # numbers per sms/send or sms/cost, ids per sms/status (smsru.md §11)

_T = TypeVar("_T")


def batches(items: Iterable[_T], size: int = MAX_RECIPIENTS) -> Iterator[list[_T]]:
    """Split `items` into lists of at most `size`, in order (a mailing sends one per request)."""
    if not 0 < size <= MAX_RECIPIENTS:
        raise ValueError(f"batch size must be 1..{MAX_RECIPIENTS}, got {size}")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
