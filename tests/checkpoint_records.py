#!/usr/bin/env python3
"""Prints the SHA-256 of a tessera checkpoint's records: every tensor and list it holds, without
its step, epoch and metadata (the run's flags). Two checkpoints print the same digest exactly
when training left the same numbers in them.  usage: checkpoint_records.py CHECKPOINT"""
import hashlib
import struct
import sys

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"TSRACKPT", "not a tessera checkpoint"
payload = data[28:]
pos = 1 + 8 + 8  # scalar size, step, epoch
(count,) = struct.unpack_from("<I", payload, pos)
pos += 4
for _ in range(2 * count):  # metadata: key, value
    (length,) = struct.unpack_from("<I", payload, pos)
    pos += 4 + length
print(hashlib.sha256(payload[pos:]).hexdigest())
