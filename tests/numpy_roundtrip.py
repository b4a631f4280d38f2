#!/usr/bin/python3
"""NumPy reads what tessera writes (ctest npy_numpy_roundtrip).

    /usr/bin/python3 tests/numpy_roundtrip.py <tessera_tests> <out_dir>

Runs the hidden test case `tessera_tests "[npy_export]"` (tests/test_npy.cpp), which writes
.npy and .npz files with known contents into out_dir, then loads each with numpy and checks
dtype, shape, layout and values, that every .npy is byte-identical to np.save of the same
array, and that every zip member's CRC is right. Exits 77 (skipped) without numpy.
"""
import io
import os
import subprocess
import sys
import zipfile

SKIP = 77


def main(argv):
    try:
        import numpy as np
    except ImportError as e:
        print("skipped:", e)
        return SKIP
    if len(argv) != 3:
        print(__doc__)
        return 2
    tessera_tests, out_dir = argv[1], argv[2]
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([tessera_tests, "[npy_export]"], env=dict(os.environ, TESSERA_NPY_EXPORT_DIR=out_dir), check=True)

    def ramp(n):  # the values the C++ side writes: 0.25·i − 1
        return np.arange(n) * 0.25 - 1.0

    expected = {
        "f4.npy": ramp(12).astype("<f4").reshape(3, 4),
        "f8_4d.npy": ramp(120).astype("<f8").reshape(2, 3, 4, 5),
        "vector.npy": ramp(5).astype("<f4"),
        "scalar.npy": np.array(3.5, dtype="<f8"),
        "empty.npy": np.zeros((0, 3), dtype="<f4"),
    }
    archives = {
        "arrays.npz": {"a": expected["f4.npy"], "scalar": expected["scalar.npy"].astype("<f4"),
                       "empty": expected["empty.npy"]},
        "zip64.npz": {"a": expected["f4.npy"], "vector": expected["vector.npy"]},
    }

    failures = []

    def check_array(what, got, want):
        if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
            failures.append("%s: got %s %s %s, want %s %s %s" % (what, got.dtype, got.shape, got.ravel()[:6],
                                                                 want.dtype, want.shape, want.ravel()[:6]))

    for name, want in expected.items():
        file = os.path.join(out_dir, name)
        check_array(name, np.load(file), want)
        with open(file, "rb") as f:
            version = f.read(8)[6:]
            if version != b"\x01\x00":
                failures.append("%s: format version %r, want 1.0" % (name, version))
        reference = io.BytesIO()
        np.save(reference, want)
        with open(file, "rb") as f:
            if f.read() != reference.getvalue():
                failures.append("%s: not byte-identical to np.save" % name)

    for name, want in archives.items():
        file = os.path.join(out_dir, name)
        with zipfile.ZipFile(file) as zf:
            bad = zf.testzip()
            if bad is not None:
                failures.append("%s: member %s fails its CRC" % (name, bad))
        with np.load(file) as z:
            if sorted(z.files) != sorted(want):
                failures.append("%s: keys %s, want %s" % (name, sorted(z.files), sorted(want)))
            for key in want:
                if key in z.files:
                    check_array("%s[%s]" % (name, key), z[key], want[key])

    for f in failures:
        print("FAIL:", f)
    print("numpy read %d .npy files and %d .npz archives from tessera: %s"
          % (len(expected), len(archives), "FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
