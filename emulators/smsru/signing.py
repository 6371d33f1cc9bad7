"""The ``hash`` field of the callbacks the emulated sms.ru POSTs (smsru.md §10):

    hash = sha256_hex(api_id + data[0] + data[1] + … + data[N])

the plain concatenation of the records in numeric key order, hashed as UTF-8 (the official
sample's comment says md5, its code and every independent handler use sha256).

Written from the reference rather than taken from the client's verifier, so that a client
misreading the formula fails the callback tests instead of agreeing with itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def callback_hash(api_id: str, records: Sequence[str]) -> str:
    digest = hashlib.sha256(api_id.encode("utf-8"))
    for record in records:  # data[0], data[1], … in the order they are numbered
        # surrogatepass: a test may queue a record that is not valid Unicode; it still goes out
        digest.update(record.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
