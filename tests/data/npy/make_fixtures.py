#!/usr/bin/python3
"""Writes the NumPy fixtures that tests/test_npy.cpp reads (tests/data/npy/*.npy, *.npz).

Every array is arange-based, so the C++ test computes the expected values itself; the
formulas are repeated next to each file below and in the test. Run with Debian's interpreter
(numpy 1.24), from anywhere:
    /usr/bin/python3 tests/data/npy/make_fixtures.py
The torch_*.npz fixtures come from tests/reference/torch_interop.py instead.
"""
import io
import os
import zipfile

import numpy as np
from numpy.lib import format as npformat

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def save(name, array, version=None):
    """np.save, or format.write_array with an explicit format version."""
    if version is None:
        np.save(path(name), array)
        return
    with open(path(name), "wb") as f:
        npformat.write_array(f, array, version=version)


def ramp(n):
    """0.25·i − 1: exact in float16/32/64, negative and fractional values."""
    return np.arange(n) * 0.25 - 1.0


# Floats, both byte orders: ramp(12) reshaped (3, 4).
save("f4_le.npy", ramp(12).astype("<f4").reshape(3, 4))
save("f4_be.npy", ramp(12).astype(">f4").reshape(3, 4))
save("f8_le.npy", ramp(12).astype("<f8").reshape(3, 4))
save("f8_be.npy", ramp(12).astype(">f8").reshape(3, 4))
save("f2_le.npy", ramp(12).astype("<f2").reshape(3, 4))

# Fortran order: C-order values i (arange) stored column-major.
save("fortran_2d.npy", np.asfortranarray(np.arange(12, dtype="<f4").reshape(3, 4)))
save("fortran_3d.npy", np.asfortranarray(np.arange(24, dtype=">f8").reshape(2, 3, 4)))

# Integers and bool: 1-D.
save("i1.npy", np.arange(-4, 4, dtype="i1"))                       # -4 .. 3
save("i2_be.npy", np.arange(-3, 3, dtype=">i2") * 1000)             # -3000 .. 2000
save("i4.npy", np.arange(-5, 5, dtype="<i4") * 100000)              # -500000 .. 400000
save("i8.npy", np.array([-(2 ** 40), -1, 0, 1, 2 ** 40], dtype="<i8"))
save("u1.npy", np.arange(250, 256, dtype="u1"))                     # 250 .. 255
save("u8_be.npy", np.array([0, 1, 2 ** 40], dtype=">u8"))
save("b1.npy", np.arange(6) % 3 == 0)                               # T F F T F F

# Header versions 2.0 and 3.0 (numpy picks them only for huge or non-latin-1 headers).
save("v2.npy", np.arange(6, dtype="<f4").reshape(2, 3), version=(2, 0))
save("v3.npy", np.arange(6, dtype="<f8").reshape(3, 2), version=(3, 0))

# Scalar shape () and an empty dimension.
save("scalar.npy", np.float64(3.5))
save("empty.npy", np.zeros((0, 3), dtype="<f4"))

# Archives: stored (numpy.savez) and deflated (numpy.savez_compressed).
arrays = {
    "a": np.arange(6, dtype="<f4").reshape(2, 3),                   # i
    "b": ramp(5).astype("<f8"),                                     # 0.25·i − 1
    "c": np.arange(-2, 2, dtype="<i4"),                             # -2 .. 1
}
np.savez(path("savez.npz"), **arrays)
arrays["big"] = (np.arange(4000) % 7).astype("<f4").reshape(40, 100)  # i mod 7: compresses well
np.savez_compressed(path("savez_compressed.npz"), **arrays)

# A plain zipfile archive (no zip64) with an archive comment.
with zipfile.ZipFile(path("comment.npz"), "w") as zf:
    buffer = io.BytesIO()
    npformat.write_array(buffer, np.arange(3, dtype="<f4"))
    zf.writestr("x.npy", buffer.getvalue())
    zf.comment = b"written by make_fixtures.py"

# Every fixture must read back in numpy.
for name in sorted(os.listdir(HERE)):
    if name.endswith(".npy"):
        np.load(path(name))
    elif name.endswith(".npz"):
        with np.load(path(name)) as z:
            [z[k] for k in z.files]
print("fixtures written to", HERE)
