"""Matrices: .npy and OMT1, with and without NumPy."""

from __future__ import annotations

import struct
import tempfile
import unittest
from pathlib import Path

import support  # noqa: F401  (puts the SDK on sys.path)

from omnisync import EncodingError, Int8Matrix, Int32Matrix, as_int8_matrix, matmul
from omnisync.npy import parse_npy

try:
    import numpy as np
except ImportError:  # NumPy is optional
    np = None


class NpyTest(unittest.TestCase):
    def test_header_is_numpys(self) -> None:
        m = Int8Matrix.from_rows([[1, -2, 3], [4, 5, -128]])
        b = m.to_npy()
        self.assertEqual(b[:10], b"\x93NUMPY\x01\x00" + struct.pack("<H", 118))
        self.assertEqual(len(b) % 64, 6 % 64)  # header padded to 64, then 6 data bytes
        self.assertEqual(b[10:].split(b"\n")[0].rstrip(), b"{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }")
        self.assertEqual(parse_npy(b), ("|i1", False, (2, 3), bytes([1, 254, 3, 4, 5, 128])))
        self.assertEqual(Int8Matrix.from_npy(b), m)

    def test_round_trips(self) -> None:
        m = Int8Matrix.from_rows([[-128, 127], [0, 1], [2, 3]])
        self.assertEqual(Int8Matrix.from_omt(m.to_omt()), m)
        p = Int32Matrix.from_rows([[2**31 - 1, -(2**31)], [0, 7]])
        self.assertEqual(Int32Matrix.from_omt(p.to_omt()), p)
        self.assertEqual(Int32Matrix.from_npy(p.to_npy()), p)
        self.assertEqual(p.tolist(), [[2**31 - 1, -(2**31)], [0, 7]])
        self.assertEqual(p[1, 1], 7)

    def test_refusals(self) -> None:
        m = Int8Matrix.from_rows([[1, 2]])
        cases = {
            "not npy": b"hello world",
            "int32 npy": Int32Matrix.from_rows([[1]]).to_npy(),
            "fortran": m.to_npy().replace(b"'fortran_order': False", b"'fortran_order': True "),
            "truncated": m.to_npy()[:-1],
            "1-D": m.to_npy().replace(b"(1, 2)", b"(2,)  "),
        }
        for name, data in cases.items():
            with self.subTest(name), self.assertRaises(EncodingError):
                Int8Matrix.from_npy(data)
        for bad in ([[1, 2], [3]], [[128]], [[True]]):
            with self.subTest(bad=bad), self.assertRaises(EncodingError):
                Int8Matrix.from_rows(bad)
        with self.assertRaises(EncodingError):
            Int32Matrix.from_omt(m.to_omt())  # int8, not int32
        with self.assertRaises(EncodingError):
            Int8Matrix.from_omt(m.to_omt() + b"\0")

    def test_as_int8_matrix_takes_what_callers_have(self) -> None:
        m = Int8Matrix.from_rows([[1, 2], [3, 4]])
        with tempfile.TemporaryDirectory() as d:
            path = m.save_npy(Path(d) / "m.npy")
            for x in (m, m.to_npy(), m.to_omt(), str(path), path, [[1, 2], [3, 4]]):
                with self.subTest(x=type(x).__name__):
                    self.assertEqual(as_int8_matrix(x), m)
        with self.assertRaises(EncodingError):
            as_int8_matrix("/nonexistent.npy")

    def test_matmul_reference(self) -> None:
        a = Int8Matrix.from_rows([[1, 2, 3], [-4, 5, -128]])
        b = Int8Matrix.from_rows([[7, 8], [9, 10], [11, -128]])
        self.assertEqual(matmul(a, b).tolist(), [[58, -356], [-1391, 16402]])
        with self.assertRaises(EncodingError):
            matmul(a, a)

    @unittest.skipIf(np is None, "NumPy is not installed (it is optional)")
    def test_numpy(self) -> None:  # pragma: no cover - runs only where NumPy is
        a = np.arange(-6, 6, dtype=np.int64).reshape(3, 4)
        m = as_int8_matrix(a)
        self.assertEqual(m.tolist(), a.tolist())
        self.assertTrue((m.to_numpy() == a).all())
        self.assertEqual(as_int8_matrix(np.asfortranarray(a.astype(np.int8))), m)
        with self.assertRaises(EncodingError):
            as_int8_matrix(np.array([[300]]))
        self.assertTrue((np.load(__import__("io").BytesIO(Int32Matrix.from_rows([[1, 2]]).to_npy())) == [[1, 2]]).all())


if __name__ == "__main__":
    unittest.main()
