"""Matrices for tensor jobs: NumPy ``.npy`` files in and out, and the OMT1 wire format.

A tensor job's inputs travel in the OMT1 format (``internal/tensor/encoding.go``):
``b"OMT1"``, a dtype byte (1 int8, 2 int32, 3 float32), three zero bytes, uint32 rows and
cols (little-endian), then the elements row-major. Consumers hold matrices as ``.npy``
files (C order, ``internal/tensor/npy.go``): matmul-int8 takes int8 and gives int32,
matmul-fp32 takes and gives float32 (``'<f4'``; NaN and ±Inf refused, as Go refuses them).
Everything here is standard library; NumPy is used only when the caller hands over a
NumPy array or asks for one (:meth:`Int32Matrix.to_numpy`).
"""

from __future__ import annotations

import array
import ast
import math
import numbers
import os
import struct
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Sequence, Tuple, Union

from .errors import EncodingError

NPY_MAGIC = b"\x93NUMPY"
OMT_MAGIC = b"OMT1"
OMT_HEADER = 16
DTYPE_INT8 = 1
DTYPE_INT32 = 2
DTYPE_FLOAT32 = 3
# MAX_ELEMENTS bounds rows*cols of any matrix, as tensor.MaxElements does.
MAX_ELEMENTS = 1 << 26
# MAX_INNER is the largest inner dimension of a product (tensor.MaxInner): k·2^14 < 2^31.
MAX_INNER = (2**31 - 1) // (128 * 128)
# The largest finite float32, and the smallest normal one (tensor.CheckMatMulFloat32).
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_MIN_NORMAL = 2.0**-126
_MAX_NPY_HEADER = 4096
_BIG_ENDIAN = sys.byteorder == "big"


def _int32_array(data: Iterable[int] = ()) -> "array.array[int]":
    for code in ("i", "l"):
        if array.array(code).itemsize == 4:
            return array.array(code, data)
    raise RuntimeError("this platform has no 4-byte C integer type")  # pragma: no cover


def _width(rows: Sequence[Sequence[Any]]) -> int:
    """The width of rows: row 0's length, 0 for no rows."""
    return len(rows[0]) if len(rows) else 0


def _even_rows(rows: Sequence[Sequence[Any]], width: int) -> Iterator[Tuple[int, Sequence[Any]]]:
    """Each row with its index, refusing the first one whose length is not width."""
    for i, row in enumerate(rows):
        if len(row) != width:
            raise EncodingError(f"row {i} has {len(row)} elements, row 0 has {width}")
        yield i, row


def read_path(p: Path, parse: Callable[[bytes], Any]) -> Any:
    """parse applied to the file at p, its errors and the file's named by the path."""
    try:
        data = p.read_bytes()
    except OSError as e:
        raise EncodingError(f"{p}: {e.strerror or e}") from e
    try:
        return parse(data)
    except EncodingError as e:
        raise EncodingError(f"{p}: {e}") from None


def _check_dims(rows: int, cols: int) -> None:
    if rows <= 0 or cols <= 0:
        raise EncodingError(f"dimensions {rows}x{cols} must be positive")
    if rows * cols > MAX_ELEMENTS:
        raise EncodingError(f"{rows}x{cols} exceeds {MAX_ELEMENTS} elements")


class _Matrix:
    """Shared behaviour of the matrix types: a dense row-major ``array.array``."""

    _omt_dtype = 0
    _npy_descr = ""
    _itemsize = 0

    def __init__(self, rows: int, cols: int, data: "array.array[int]") -> None:
        _check_dims(rows, cols)
        if len(data) != rows * cols:
            raise EncodingError(f"{rows}x{cols} needs {rows * cols} elements, got {len(data)}")
        self.rows = rows
        self.cols = cols
        self.data = data

    @property
    def shape(self) -> Tuple[int, int]:
        """(rows, cols)."""
        return (self.rows, self.cols)

    def __getitem__(self, ij: Tuple[int, int]) -> int:
        i, j = ij
        if not (0 <= i < self.rows and 0 <= j < self.cols):
            raise IndexError(f"({i}, {j}) is outside a {self.rows}x{self.cols} matrix")
        return self.data[i * self.cols + j]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.shape == other.shape and self.data == other.data  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rows}x{self.cols})"

    def tolist(self) -> List[List[int]]:
        """The rows as lists of ints."""
        c = self.cols
        return [list(self.data[r * c : (r + 1) * c]) for r in range(self.rows)]

    def _le_bytes(self) -> bytes:
        if _BIG_ENDIAN and self._itemsize > 1:
            a = array.array(self.data.typecode, self.data)
            a.byteswap()
            return a.tobytes()
        return self.data.tobytes()

    def to_omt(self) -> bytes:
        """The OMT1 encoding (``MarshalBinary``): what a tensor job's inputs and output are."""
        return OMT_MAGIC + bytes([self._omt_dtype, 0, 0, 0]) + struct.pack("<II", self.rows, self.cols) + self._le_bytes()

    def to_npy(self) -> bytes:
        """A NumPy ``.npy`` file (version 1.0, C order), written as the Go CLI writes it."""
        return _npy_header(self._npy_descr, self.rows, self.cols) + self._le_bytes()

    def save_npy(self, path: Union[str, "os.PathLike[str]"]) -> Path:
        """Write :meth:`to_npy` to path; ``numpy.load`` reads it."""
        p = Path(path)
        p.write_bytes(self.to_npy())
        return p

    def to_numpy(self) -> Any:
        """The matrix as a NumPy array (needs NumPy)."""
        try:
            import numpy as np
        except ImportError:
            raise ImportError("to_numpy needs NumPy (pip install numpy); tolist() does not") from None
        dtype = np.dtype(self._npy_descr)
        return np.frombuffer(self._le_bytes(), dtype=dtype).reshape(self.rows, self.cols).copy()


class Int8Matrix(_Matrix):
    """An int8 matrix: a tensor job's operand."""

    _omt_dtype = DTYPE_INT8
    _npy_descr = "|i1"
    _itemsize = 1

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]]) -> "Int8Matrix":
        """Build from rows of ints, each in -128..127."""
        r, c = len(rows), _width(rows)
        flat = array.array("b")
        for i, row in _even_rows(rows, c):
            for v in row:
                if isinstance(v, bool) or not isinstance(v, int) or not -128 <= v <= 127:
                    raise EncodingError(f"row {i} holds {v!r}, outside int8 (-128..127)")
            flat.extend(row)
        return cls(r, c, flat)

    @classmethod
    def from_npy(cls, data: bytes) -> "Int8Matrix":
        """Decode a ``.npy`` file holding a 2-D int8 array in C order (as ``ParseNPYInt8``)."""
        descr, fortran, shape, body = parse_npy(data)
        if descr not in ("|i1", "<i1", "i1"):
            raise EncodingError(f"npy dtype '{descr}': want int8 ('|i1'; numpy: a.astype(np.int8))")
        if fortran:
            raise EncodingError("npy array is in Fortran order: save np.ascontiguousarray(a)")
        if len(shape) != 2:
            raise EncodingError(f"npy array has {len(shape)} dimensions, want a 2-D matrix")
        rows, cols = shape
        _check_dims(rows, cols)
        if len(body) != rows * cols:
            raise EncodingError(
                f"npy shape ({rows}, {cols}) needs {rows * cols} bytes of data, the file has {len(body)}"
            )
        return cls(rows, cols, array.array("b", body))

    @classmethod
    def from_omt(cls, data: bytes) -> "Int8Matrix":
        """Decode an OMT1 int8 matrix (``tensor.DecodeInt8``)."""
        rows, cols, body = _omt_parts(data, DTYPE_INT8, 1)
        return cls(rows, cols, array.array("b", body))


class Int32Matrix(_Matrix):
    """An int32 matrix: a tensor job's output (matmul-int8 writes A·B)."""

    _omt_dtype = DTYPE_INT32
    _npy_descr = "<i4"
    _itemsize = 4

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]]) -> "Int32Matrix":
        """Build from rows of ints, each within int32."""
        r, c = len(rows), _width(rows)
        flat = _int32_array()
        for i, row in _even_rows(rows, c):
            try:
                flat.extend(row)
            except (OverflowError, TypeError):
                raise EncodingError(f"row {i} holds a value outside int32") from None
        return cls(r, c, flat)

    @classmethod
    def from_omt(cls, data: bytes) -> "Int32Matrix":
        """Decode an OMT1 int32 matrix (``tensor.DecodeInt32``): a tensor job's output."""
        rows, cols, body = _omt_parts(data, DTYPE_INT32, 4)
        a = _int32_array()
        a.frombytes(body)
        if _BIG_ENDIAN:
            a.byteswap()
        return cls(rows, cols, a)

    @classmethod
    def from_npy(cls, data: bytes) -> "Int32Matrix":
        """Decode a ``.npy`` file holding a 2-D int32 array in C order (``'<i4'`` or ``'>i4'``)."""
        descr, fortran, shape, body = parse_npy(data)
        if descr not in ("<i4", ">i4") or fortran or len(shape) != 2:
            raise EncodingError(f"npy holds '{descr}' {shape}{' in Fortran order' if fortran else ''}: want a 2-D int32 matrix in C order")
        rows, cols = shape
        _check_dims(rows, cols)
        if len(body) != 4 * rows * cols:
            raise EncodingError(f"npy shape ({rows}, {cols}) needs {4 * rows * cols} bytes of data, the file has {len(body)}")
        a = _int32_array()
        a.frombytes(body)
        if (descr == ">i4") != _BIG_ENDIAN:
            a.byteswap()
        return cls(rows, cols, a)


class Float32Matrix(_Matrix):
    """A float32 matrix: the matmul-fp32 kernel's operands and its output.

    Every element is finite, as ``tensor.Float32Matrix`` requires: NaN and ±Inf are
    refused wherever a matrix is made, so its OMT1 bytes name it by one digest.
    :meth:`tolist` gives Python floats holding the float32 values exactly.
    """

    _omt_dtype = DTYPE_FLOAT32
    _npy_descr = "<f4"
    _itemsize = 4

    def __init__(self, rows: int, cols: int, data: "array.array[float]") -> None:
        super().__init__(rows, cols, data)
        if not all(map(math.isfinite, data)):
            i = next(k for k, v in enumerate(data) if not math.isfinite(v))
            raise EncodingError(f"element ({i // cols}, {i % cols}) is {data[i]}: float32 matrices hold finite values")

    def __eq__(self, other: object) -> bool:
        # Bit for bit, as digests compare them: -0.0 is not 0.0 here.
        return type(other) is type(self) and self.shape == other.shape and self.data.tobytes() == other.data.tobytes()  # type: ignore[attr-defined]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> "Float32Matrix":
        """Build from rows of numbers, each rounded to the nearest float32 (finite only)."""
        r, c = len(rows), _width(rows)
        flat = array.array("f")
        for i, row in _even_rows(rows, c):
            for v in row:
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    raise EncodingError(f"row {i} holds {v!r}: want a number")
            try:
                flat.extend(row)
                ok = all(map(math.isfinite, flat[-c:])) if c else True
            except OverflowError:  # an int beyond any float
                ok = False
            if not ok:
                v = next(v for v in row if not _fits_float32(v))
                raise EncodingError(f"row {i} holds {v!r}: float32 matrices hold finite values within ±{FLOAT32_MAX:.7g}")
        return cls(r, c, flat)

    @classmethod
    def from_omt(cls, data: bytes) -> "Float32Matrix":
        """Decode an OMT1 float32 matrix (``tensor.DecodeFloat32``), refusing NaN and ±Inf."""
        rows, cols, body = _omt_parts(data, DTYPE_FLOAT32, 4)
        return cls(rows, cols, _float32s(body, big_endian=False))

    @classmethod
    def from_npy(cls, data: bytes) -> "Float32Matrix":
        """Decode a ``.npy`` file holding a 2-D float32 array in C order (``'<f4'``, as
        ``ParseNPYFloat32``, or ``'>f4'``), refusing NaN and ±Inf."""
        descr, fortran, shape, body = parse_npy(data)
        if descr not in ("<f4", ">f4"):
            raise EncodingError(f"npy dtype '{descr}': want float32 ('<f4'; numpy: a.astype(np.float32))")
        if fortran:
            raise EncodingError("npy array is in Fortran order: save np.ascontiguousarray(a)")
        if len(shape) != 2:
            raise EncodingError(f"npy array has {len(shape)} dimensions, want a 2-D matrix")
        rows, cols = shape
        _check_dims(rows, cols)
        if len(body) != 4 * rows * cols:
            raise EncodingError(f"npy shape ({rows}, {cols}) needs {4 * rows * cols} bytes of data, the file has {len(body)}")
        return cls(rows, cols, _float32s(body, big_endian=descr == ">f4"))


def _fits_float32(v: Any) -> bool:
    """Whether v rounds to a finite float32."""
    try:
        return math.isfinite(array.array("f", [v])[0])
    except OverflowError:
        return False


def _float32s(body: bytes, big_endian: bool) -> "array.array[float]":
    a = array.array("f")
    a.frombytes(body)
    if big_endian != _BIG_ENDIAN:
        a.byteswap()
    return a


def _omt_parts(b: bytes, dtype: int, elem: int) -> Tuple[int, int, bytes]:
    names = {DTYPE_INT8: "int8", DTYPE_INT32: "int32", DTYPE_FLOAT32: "float32"}
    if len(b) < OMT_HEADER:
        raise EncodingError(f"{len(b)} bytes is shorter than the {OMT_HEADER}-byte header")
    if b[:4] != OMT_MAGIC:
        raise EncodingError(f"bad magic {bytes(b[:4])!r}, want {OMT_MAGIC!r}")
    if b[4] != dtype:
        raise EncodingError(f"dtype {b[4]} ({names.get(b[4], 'unknown')}), want {dtype} ({names[dtype]})")
    if b[5:8] != b"\0\0\0":
        raise EncodingError("reserved header bytes are not zero")
    rows, cols = struct.unpack_from("<II", b, 8)
    if rows == 0 or cols == 0:
        raise EncodingError(f"dimensions {rows}x{cols} must be positive")
    if rows * cols > MAX_ELEMENTS:
        raise EncodingError(f"{rows}x{cols} is too large, limit {MAX_ELEMENTS} elements")
    want = OMT_HEADER + rows * cols * elem
    if len(b) != want:
        raise EncodingError(f"size mismatch: {rows}x{cols} {names[dtype]} needs {want} bytes, got {len(b)}")
    return rows, cols, bytes(b[OMT_HEADER:])


def _npy_header(descr: str, *shape: int) -> bytes:
    """A version 1.0 header for a C-order array, as NumPy writes it: ``(2, 3)``, ``(3,)``."""
    d = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    pad = (64 - (10 + len(d) + 1) % 64) % 64
    header = (d + " " * pad + "\n").encode("latin-1")
    return NPY_MAGIC + b"\x01\x00" + struct.pack("<H", len(header)) + header


def parse_npy(b: bytes) -> Tuple[str, bool, Tuple[int, ...], bytes]:
    """Split a ``.npy`` file (versions 1.0 to 3.0) into descr, fortran_order, shape and data."""
    if len(b) < 10 or b[:6] != NPY_MAGIC:
        raise EncodingError("not a NumPy .npy file (no \\x93NUMPY magic)")
    if b[6] == 1:
        (hlen,), start = struct.unpack_from("<H", b, 8), 10
    elif b[6] in (2, 3):
        if len(b) < 12:
            raise EncodingError("npy header truncated")
        (hlen,), start = struct.unpack_from("<I", b, 8), 12
    else:
        raise EncodingError(f"npy version {b[6]}.{b[7]} is not supported")
    if hlen > _MAX_NPY_HEADER or start + hlen > len(b):
        raise EncodingError(f"npy header of {hlen} bytes does not fit the file")
    text = bytes(b[start : start + hlen]).decode("latin-1")
    try:
        header = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        header = None
    if (
        not isinstance(header, dict)
        or not isinstance(header.get("descr"), str)
        or not isinstance(header.get("fortran_order"), bool)
        or not isinstance(header.get("shape"), tuple)
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in header["shape"])
    ):
        raise EncodingError(f"npy header {text.strip()!r} lacks descr, fortran_order or shape")
    return header["descr"], header["fortran_order"], tuple(header["shape"]), bytes(b[start + hlen :])


MatrixLike = Union[Int8Matrix, bytes, str, "os.PathLike[str]", Sequence[Sequence[int]], Any]
Float32Like = Union[Float32Matrix, bytes, str, "os.PathLike[str]", Sequence[Sequence[float]], Any]


def as_int8_matrix(x: MatrixLike) -> Int8Matrix:
    """Turn what a caller has into an int8 operand.

    Takes an :class:`Int8Matrix`; the bytes of a ``.npy`` file or of an OMT1 int8 matrix;
    the path of a ``.npy`` file; a 2-D NumPy array of any integer dtype whose values fit
    int8; or rows of ints.
    """
    return _as_matrix(Int8Matrix, x, _int8_from_numpy)


def as_float32_matrix(x: Float32Like) -> Float32Matrix:
    """Turn what a caller has into a float32 operand (matmul-fp32).

    Takes a :class:`Float32Matrix`; the bytes of a ``.npy`` file (``'<f4'``) or of an OMT1
    float32 matrix; the path of a ``.npy`` file; a 2-D NumPy float32 array (other dtypes
    are refused rather than rounded: ``a.astype(np.float32)``); or rows of numbers, each
    rounded to the nearest float32. NaN and ±Inf are refused.
    """
    return _as_matrix(Float32Matrix, x, _float32_from_numpy)


def _as_matrix(cls: Any, x: Any, from_numpy: Any) -> Any:
    if isinstance(x, cls):
        return x
    if isinstance(x, _Matrix):
        raise EncodingError(f"a {type(x).__name__} is not a {cls.__name__}: convert it explicitly")
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        if b[:4] == OMT_MAGIC:
            return cls.from_omt(b)
        return cls.from_npy(b)
    if isinstance(x, (str, os.PathLike)):
        return read_path(Path(x), cls.from_npy)
    if _is_numpy(x):
        if len(x.shape) != 2:
            raise EncodingError(f"array has {len(x.shape)} dimensions, want a 2-D matrix")
        return from_numpy(x)
    if isinstance(x, Sequence):
        return cls.from_rows(x)
    raise TypeError(f"cannot make a {cls.__name__} of a {type(x).__name__}")


def _is_numpy(x: Any) -> bool:
    return hasattr(x, "dtype") and hasattr(x, "shape") and hasattr(x, "tobytes")


def _int8_from_numpy(a: Any) -> Int8Matrix:
    if a.dtype.kind not in "iu":
        raise EncodingError(f"array dtype {a.dtype}: want integers in -128..127 (numpy: a.astype(np.int8))")
    rows, cols = int(a.shape[0]), int(a.shape[1])
    if a.dtype.itemsize == 1 and a.dtype.kind == "i":
        return Int8Matrix(rows, cols, array.array("b", a.tobytes(order="C")))
    return Int8Matrix.from_rows(a.tolist())


def _float32_from_numpy(a: Any) -> Float32Matrix:
    if a.dtype.kind != "f" or a.dtype.itemsize != 4:
        raise EncodingError(f"array dtype {a.dtype}: want float32 (numpy: a.astype(np.float32))")
    return Float32Matrix(int(a.shape[0]), int(a.shape[1]), _float32s(a.tobytes(order="C"), big_endian=a.dtype.str == ">f4"))


def _check_matmul_float32(a: Float32Matrix, b: Float32Matrix) -> None:
    """Refuse what ``tensor.CheckMatMulFloat32`` refuses: non-conforming shapes, an inner
    dimension past MAX_INNER, subnormal elements (a GPU may flush them to zero, an error
    no rounding bound covers), and operands whose product could overflow float32."""
    if a.cols != b.rows:
        raise EncodingError(f"cannot multiply {a.rows}x{a.cols} by {b.rows}x{b.cols}: A's columns must equal B's rows")
    if a.cols > MAX_INNER:
        raise EncodingError(f"inner dimension {a.cols} exceeds {MAX_INNER}")
    largest = []
    for name, m in (("A", a), ("B", b)):
        for i, v in enumerate(m.data):
            if v != 0 and abs(v) < FLOAT32_MIN_NORMAL:
                raise EncodingError(f"input {name}: element ({i // m.cols}, {i % m.cols}) = {v:g} is subnormal (below 2^-126): flush it to zero")
        largest.append(max(map(abs, m.data)))
    if a.cols * largest[0] * largest[1] > FLOAT32_MAX / 2:
        raise EncodingError(
            f"inner dimension {a.cols} × max|A| {largest[0]:g} × max|B| {largest[1]:g} exceeds MaxFloat32/2: "
            "the product could overflow float32 (scale the inputs down)"
        )


def matmul(a: Int8Matrix, b: Int8Matrix) -> Int32Matrix:
    """A·B in int32, as the matmul-int8 kernel computes it (pure Python: for checking
    results and small matrices, not for speed)."""
    if a.cols != b.rows:
        raise EncodingError(f"cannot multiply {a.rows}x{a.cols} by {b.rows}x{b.cols}")
    n, k, m = a.rows, a.cols, b.cols
    bcols = [b.data[j::m] for j in range(m)]
    out = _int32_array()
    for i in range(n):
        row = a.data[i * k : (i + 1) * k]
        for col in bcols:
            s = sum(x * y for x, y in zip(row, col))
            out.append((s + (1 << 31)) % (1 << 32) - (1 << 31))
    return Int32Matrix(n, m, out)
