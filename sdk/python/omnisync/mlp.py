"""int8 MLPs for the mlp-int8 kernel: the model, its OMZM encoding, and the job's output.

A model (``tensor.MLP``) is a list of fully connected layers, each with int8 weights
(Out×In, row-major: ``weights[j][i]`` multiplies input i for output j), one int32 bias per
output and a requantising right shift (0..31). Each layer computes, per output j,

    acc_j = biases[j] + Σ_i weights[j][i]·x_i      (exact)
    y_j   = clamp(floor(acc_j / 2**shift), lo, 127)

with lo = 0 inside (the clamp is the ReLU) and -128 for the last layer, whose y is the
model's output. A job's inputs are the model, OMZM-encoded as
``internal/tensor/mlp_encoding.go`` does, and X, an OMT1 int8 batch (one input per row);
its output is the trace (OMLT): every layer's int32 accumulators, which the validators
check layer by layer, and the int8 output rows.

Models come from layers of plain lists, from NumPy arrays, or from the ``.npz`` file the
CLI's ``--model`` reads (``w{i}``, ``b{i}``, ``shifts``), which is read and written here
without NumPy. Only the freivalds and audit levels are built here: the zk level commits to
the model and the input with Poseidon2 over BN254, which only the Go CLI computes.
"""

from __future__ import annotations

import array
import io
import numbers
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence, Tuple, Union

from .errors import EncodingError
from .npy import (
    MAX_ELEMENTS,
    Int8Matrix,
    Int32Matrix,
    _BIG_ENDIAN,
    _int32_array,
    _is_numpy,
    _npy_header,
    as_int8_matrix,
    parse_npy,
    read_path,
)

MODEL_MAGIC = b"OMZM"
TRACE_MAGIC = b"OMLT"
ZK_RESULT_MAGIC = b"OMZR"
BLOB_VERSION = 1
# Limits, as internal/tensor/mlp.go declares them.
MLP_MAX_DIM = 4096
MLP_MAX_LAYERS = 16
MLP_MAX_SHIFT = 31
# The most model bytes the CLI's .npz reader takes (cli.maxModelFile).
MAX_MODEL_FILE = 1 << 28
_ZK_MAX_PROOF = 1 << 10

_I32 = 1 << 31
# NumPy integer dtypes the CLI reads biases and shifts in (tensor.npyInts): size, signed.
_NPY_INTS = {
    "|i1": (1, True), "<i1": (1, True), "i1": (1, True), "|u1": (1, False), "<u1": (1, False), "u1": (1, False),
    "<i2": (2, True), "<u2": (2, False), "<i4": (4, True), "<u4": (4, False), "<i8": (8, True),
}  # fmt: skip


@dataclass(frozen=True, eq=True)
class MLPLayer:
    """One layer: int8 weights Out×In, one int32 bias per output, a right shift 0..31."""

    weights: Int8Matrix
    biases: Tuple[int, ...]
    shift: int

    @property
    def inputs(self) -> int:
        return self.weights.cols

    @property
    def outputs(self) -> int:
        return self.weights.rows

    @classmethod
    def of(cls, weights: Any, biases: Any, shift: Any, *, index: int = 0) -> "MLPLayer":
        """Build and check a layer from what a caller has: weights as rows of ints, a NumPy
        array or an :class:`Int8Matrix` (Out×In); biases as ints or a 1-D NumPy array."""
        try:
            w = as_int8_matrix(weights)
        except EncodingError as e:
            raise EncodingError(f"layer {index} weights: {e}") from None
        if _is_numpy(biases):
            if len(biases.shape) != 1 or biases.dtype.kind not in "iu":
                raise EncodingError(f"layer {index} biases: a {biases.dtype} array of shape {biases.shape}, want 1-D integers")
            biases = biases.tolist()
        b = tuple(_plain_int(v) for v in biases)
        layer = cls(w, b, _plain_int(shift))
        layer._check(index)
        return layer

    def _check(self, index: int) -> None:
        s = self.shift
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MLP_MAX_SHIFT:
            raise EncodingError(f"layer {index} shift {s!r}: want 0..{MLP_MAX_SHIFT}")
        if not (1 <= self.inputs <= MLP_MAX_DIM and 1 <= self.outputs <= MLP_MAX_DIM):
            raise EncodingError(f"layer {index} is {self.inputs}x{self.outputs} (inputs x outputs), want 1..{MLP_MAX_DIM} each")
        if len(self.biases) != self.outputs:
            raise EncodingError(f"layer {index} has {len(self.biases)} biases for {self.outputs} outputs (weight rows)")
        for j, v in enumerate(self.biases):
            if isinstance(v, bool) or not isinstance(v, int):
                raise EncodingError(f"layer {index} bias {j} is {v!r}: want an int32")
            if not -_I32 <= v < _I32:
                raise EncodingError(f"layer {index} bias {j} is {v}, beyond int32")

    def _acc_bound(self) -> Tuple[int, int]:
        """The largest |accumulator| any int8 input can give, and the output giving it."""
        best, at = -1, 0
        w, n = self.weights.data, self.inputs
        for j, b in enumerate(self.biases):
            bound = abs(b) + 128 * sum(map(abs, w[j * n : (j + 1) * n]))
            if bound > best:
                best, at = bound, j
        return best, at


class MLP:
    """An int8 multilayer perceptron (``tensor.MLP``): the mlp-int8 kernel's model."""

    def __init__(self, layers: Sequence[MLPLayer]) -> None:
        self.layers: Tuple[MLPLayer, ...] = tuple(layers)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`EncodingError` unless the model is one ``MLP.Validate`` accepts:
        1..16 layers of 1..4096 inputs and outputs, shifts 0..31, int32 biases, and each
        layer taking as many inputs as the one before gives."""
        if not 1 <= len(self.layers) <= MLP_MAX_LAYERS:
            raise EncodingError(f"{len(self.layers)} layers, want 1..{MLP_MAX_LAYERS}")
        for i, l in enumerate(self.layers):
            if not isinstance(l, MLPLayer):
                raise TypeError(f"layer {i} is a {type(l).__name__}, not an MLPLayer (see MLP.from_layers)")
            l._check(i)
            if i > 0 and l.inputs != self.layers[i - 1].outputs:
                raise EncodingError(
                    f"layers do not chain: layer {i} takes {l.inputs} inputs, layer {i - 1} gives {self.layers[i - 1].outputs}"
                )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MLP) and self.layers == other.layers

    def __repr__(self) -> str:
        return f"MLP({self.shape_id})"

    @property
    def inputs(self) -> int:
        """How wide an input row is."""
        return self.layers[0].inputs

    @property
    def outputs(self) -> int:
        """How wide an output row is."""
        return self.layers[-1].outputs

    @property
    def shape_id(self) -> str:
        """The shape's name as Go writes it (``MLPShape.ID``), e.g. ``"64x32s7-32x10s6"``."""
        return "-".join(f"{l.inputs}x{l.outputs}s{l.shift}" for l in self.layers)

    @classmethod
    def from_layers(cls, layers: Sequence[Any]) -> "MLP":
        """Build from ``[(weights, biases, shift), …]``: weights Out×In as rows of ints in
        -128..127 (or a NumPy integer array, or an :class:`Int8Matrix`), biases one int32
        per output, shift 0..31."""
        out = []
        for i, layer in enumerate(layers):
            if isinstance(layer, MLPLayer):
                out.append(layer)
                continue
            try:
                w, b, s = layer
            except (TypeError, ValueError):
                raise EncodingError(f"layer {i}: want (weights, biases, shift)") from None
            out.append(MLPLayer.of(w, b, s, index=i))
        return cls(out)

    # The OMZM encoding: "OMZM" 1, layers u8, per layer (in u32, out u32, shift u8), then
    # per layer its weights (int8, row-major) and biases (int32); big-endian.

    def to_omzm(self) -> bytes:
        """The model's encoding, byte for byte ``MLP.MarshalBinary``: the job's ``model`` input."""
        parts = [MODEL_MAGIC, bytes([BLOB_VERSION, len(self.layers)])]
        parts += [struct.pack(">IIB", l.inputs, l.outputs, l.shift) for l in self.layers]
        for l in self.layers:
            parts.append(l.weights.data.tobytes())
            parts.append(struct.pack(f">{len(l.biases)}i", *l.biases))
        return b"".join(parts)

    @classmethod
    def from_omzm(cls, data: bytes) -> "MLP":
        """Decode a model as ``tensor.DecodeMLP`` does (exactly its bytes, nothing left over)."""
        b = bytes(data)
        if len(b) < 6 or bytes(b[:4]) != MODEL_MAGIC or b[4] != BLOB_VERSION:
            raise EncodingError(f"not a model (magic {bytes(b[:4])!r}, version {b[4] if len(b) > 4 else '?'}): want {MODEL_MAGIC!r} {BLOB_VERSION}")
        n = b[5]
        if not 1 <= n <= MLP_MAX_LAYERS:
            raise EncodingError(f"{n} layers, want 1..{MLP_MAX_LAYERS}")
        if len(b) < 6 + 9 * n:
            raise EncodingError(f"{len(b)} bytes is too short for the shapes of {n} layers")
        shapes = [struct.unpack_from(">IIB", b, 6 + 9 * i) for i in range(n)]
        for i, (fan_in, fan_out, shift) in enumerate(shapes):
            if not (1 <= fan_in <= MLP_MAX_DIM and 1 <= fan_out <= MLP_MAX_DIM):
                raise EncodingError(f"layer {i} is {fan_in}x{fan_out}, want 1..{MLP_MAX_DIM} each")
            if shift > MLP_MAX_SHIFT:
                raise EncodingError(f"layer {i} shift {shift} > {MLP_MAX_SHIFT}")
            if i > 0 and fan_in != shapes[i - 1][1]:
                raise EncodingError(f"layers do not chain: layer {i} takes {fan_in} inputs, layer {i - 1} gives {shapes[i - 1][1]}")
        pos = 6 + 9 * n
        want = sum(i * o + 4 * o for i, o, _ in shapes)
        if len(b) - pos != want:
            raise EncodingError(f"{len(b) - pos} bytes of parameters for shape {_shape_id(shapes)}, want {want}")
        layers = []
        for fan_in, fan_out, shift in shapes:
            w = Int8Matrix(fan_out, fan_in, array.array("b", b[pos : pos + fan_in * fan_out]))
            pos += fan_in * fan_out
            biases = struct.unpack_from(f">{fan_out}i", b, pos)
            pos += 4 * fan_out
            layers.append(MLPLayer(w, biases, shift))
        return cls(layers)

    # The CLI's .npz: w{i} int8 (Out, In), b{i} integers (Out,), shifts (layers,).

    @classmethod
    def from_npz(cls, source: Union[bytes, str, "os.PathLike[str]"]) -> "MLP":
        """Read the ``.npz`` the CLI's ``--model`` reads (``numpy.savez(path, w0=W0, b0=b0,
        …, shifts=[…])``), with or without NumPy: ``w{i}`` int8 weights (Out, In), ``b{i}``
        integer biases (Out,) within int32, ``shifts`` one per layer. ``source`` is a path
        or the file's bytes."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _parse_npz(bytes(source))
        return read_path(Path(source), _parse_npz)

    def to_npz(self) -> bytes:
        """The model as that ``.npz`` (``numpy.load`` and ``omnisync job submit --model`` read it)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for i, l in enumerate(self.layers):
                z.writestr(f"w{i}.npy", l.weights.to_npy())
                z.writestr(f"b{i}.npy", _npy_1d("<i4", _le_int32s(l.biases)))
            z.writestr("shifts.npy", _npy_1d("|u1", bytes(l.shift for l in self.layers)))
        return buf.getvalue()

    def save_npz(self, path: Union[str, "os.PathLike[str]"]) -> Path:
        """Write :meth:`to_npz` to path."""
        p = Path(path)
        p.write_bytes(self.to_npz())
        return p

    # Running it, as a reference and to check a batch before sending it.

    def check_batch(self, x: Int8Matrix) -> None:
        """Refuse what the kernel refuses (``MLP.CheckBatch``): a batch of the wrong width,
        too many rows for the trace, or a model whose accumulators could leave int32."""
        for i, l in enumerate(self.layers):
            bound, j = l._acc_bound()
            if bound > _I32 - 1:
                raise EncodingError(f"layer {i} output {j} can accumulate to ±{bound}, beyond int32 (the zk level takes such models; this kernel does not)")
        if x.cols != self.inputs:
            raise EncodingError(f"X is {x.rows}x{x.cols}, the model takes {self.inputs} inputs")
        outs = sum(l.outputs for l in self.layers)
        if x.rows > MAX_ELEMENTS // outs:
            raise EncodingError(f"{x.rows} rows of {outs} outputs exceed {MAX_ELEMENTS} accumulators")

    def trace(self, x: Int8Matrix) -> "MLPTrace":
        """Run the model on the rows of x as the kernel does (pure Python: for checking
        results and small batches, not for speed)."""
        self.check_batch(x)
        accs: List[Int32Matrix] = []
        h = x
        for li, l in enumerate(self.layers):
            lo = -128 if li == len(self.layers) - 1 else 0
            n, w = l.inputs, l.weights.data
            rows = [w[j * n : (j + 1) * n] for j in range(l.outputs)]
            acc = _int32_array()
            out = array.array("b")
            for r in range(h.rows):
                xr = h.data[r * n : (r + 1) * n]
                for row, b in zip(rows, l.biases):
                    a = b + sum(p * q for p, q in zip(row, xr))
                    acc.append(a)
                    out.append(min(max(a >> l.shift, lo), 127))
            accs.append(Int32Matrix(h.rows, l.outputs, acc))
            h = Int8Matrix(h.rows, l.outputs, out)
        return MLPTrace(tuple(accs), h)

    def forward(self, x: Int8Matrix) -> Int8Matrix:
        """The model's output on the rows of x (``MLP.ForwardBatch``)."""
        return self.trace(x).output


@dataclass(frozen=True)
class MLPTrace:
    """An mlp-int8 job's output at the freivalds and audit levels (``tensor.MLPTrace``):
    each layer's int32 accumulators (batch × outputs) and the int8 output rows."""

    accumulators: Tuple[Int32Matrix, ...]
    output: Int8Matrix

    @classmethod
    def from_omlt(cls, data: bytes) -> "MLPTrace":
        """Decode a trace as ``tensor.DecodeMLPTrace`` does: "OMLT" 1, layers u8, rows u32,
        per layer its outputs u32, then the accumulators (int32) and the output (int8),
        little-endian."""
        b = bytes(data)
        if len(b) < 10 or b[:4] != TRACE_MAGIC or b[4] != BLOB_VERSION:
            raise EncodingError(f"not an MLP trace (magic {b[:4]!r}): want {TRACE_MAGIC!r} {BLOB_VERSION}")
        n = b[5]
        if not 1 <= n <= MLP_MAX_LAYERS:
            raise EncodingError(f"{n} layers, want 1..{MLP_MAX_LAYERS}")
        (rows,) = struct.unpack_from("<I", b, 6)
        if not 1 <= rows <= MAX_ELEMENTS or len(b) < 10 + 4 * n:
            raise EncodingError(f"a trace of {rows} rows and {n} layers does not fit {len(b)} bytes")
        cols = struct.unpack_from(f"<{n}I", b, 10)
        if not all(1 <= c <= MLP_MAX_DIM for c in cols):
            raise EncodingError(f"layer outputs {list(cols)}, want 1..{MLP_MAX_DIM} each")
        total = rows * sum(cols)
        if total > MAX_ELEMENTS:
            raise EncodingError(f"{total} accumulators exceed {MAX_ELEMENTS}")
        pos = 10 + 4 * n
        want = 4 * total + rows * cols[-1]
        if len(b) - pos != want:
            raise EncodingError(f"{len(b) - pos} bytes of data for {rows} rows of {list(cols)} outputs, want {want}")
        accs = []
        for c in cols:
            a = _int32_array()
            a.frombytes(b[pos : pos + 4 * rows * c])
            if _BIG_ENDIAN:
                a.byteswap()
            accs.append(Int32Matrix(rows, c, a))
            pos += 4 * rows * c
        return cls(tuple(accs), Int8Matrix(rows, cols[-1], array.array("b", b[pos:])))


def zk_output(data: bytes) -> Tuple[Int8Matrix, bytes]:
    """Decode a zk job's output (``zk.DecodeResult``): the output row (1×Out) and the
    proof, which the chain's committee verified (this SDK does not)."""
    b = bytes(data)
    if len(b) < 9 or b[:4] != ZK_RESULT_MAGIC or b[4] != BLOB_VERSION:
        raise EncodingError(f"not a zk result (magic {b[:4]!r}): want {ZK_RESULT_MAGIC!r} {BLOB_VERSION}")
    (n,) = struct.unpack_from(">I", b, 5)
    if not 1 <= n <= MLP_MAX_DIM or len(b) < 13 + n:
        raise EncodingError(f"zk result of {len(b)} bytes with an output of {n}")
    (p,) = struct.unpack_from(">I", b, 9 + n)
    if p > _ZK_MAX_PROOF or len(b) != 13 + n + p:
        raise EncodingError(f"zk result of {len(b)} bytes with an output of {n} and a proof of {p}")
    return Int8Matrix(1, n, array.array("b", b[9 : 9 + n])), b[13 + n :]


ModelLike = Union[MLP, bytes, str, "os.PathLike[str]", Sequence[Any]]


def as_mlp(x: ModelLike) -> MLP:
    """Turn what a caller has into a model: an :class:`MLP`; OMZM bytes or the bytes of an
    ``.npz``; the path of an ``.npz``; or ``[(weights, biases, shift), …]``."""
    if isinstance(x, MLP):
        return x
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        return MLP.from_omzm(b) if b[:4] == MODEL_MAGIC else MLP.from_npz(b)
    if isinstance(x, (str, os.PathLike)):
        return MLP.from_npz(x)
    if isinstance(x, Sequence):
        return MLP.from_layers(x)
    raise TypeError(f"cannot make an MLP of a {type(x).__name__}")


def _plain_int(v: Any) -> Any:
    """v as a Python int when it is an integer of any kind (a NumPy one too), else as is."""
    return int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v


def _shape_id(shapes: Sequence[Tuple[int, int, int]]) -> str:
    return "-".join(f"{i}x{o}s{s}" for i, o, s in shapes)


def _le_int32s(values: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(values)}i", *values)


def _npy_1d(descr: str, body: bytes) -> bytes:
    return _npy_header(descr, len(body) // int(descr[-1])) + body


def _npy_ints(raw: bytes, name: str) -> Tuple[Tuple[int, ...], List[int]]:
    """An integer array of any dtype ``tensor.ParseNPYInts`` reads, as its shape and values."""
    descr, fortran, shape, body = parse_npy(raw)
    if descr not in _NPY_INTS:
        raise EncodingError(f"{name}: npy dtype '{descr}': want an integer array (int8 to int64, or uint8 to uint32)")
    if fortran and len(shape) > 1:
        raise EncodingError(f"{name}: npy array is in Fortran order: save np.ascontiguousarray(a)")
    size, signed = _NPY_INTS[descr]
    n = 1
    for d in shape:
        n *= d
    if n > MAX_ELEMENTS or len(body) != n * size:
        raise EncodingError(f"{name}: npy shape {shape} needs {n * size} bytes of data, the file has {len(body)}")
    values = [int.from_bytes(body[i : i + size], "little", signed=signed) for i in range(0, len(body), size)]
    return shape, values


def _parse_npz(raw: bytes) -> MLP:
    """Decode the CLI's model .npz (``cli.parseMLPNPZ``)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as e:
        raise EncodingError(f"not an .npz archive: {e}") from None
    arrays = {}
    total = 0
    with z:
        for info in z.infolist():
            name = info.filename[: -len(".npy")] if info.filename.endswith(".npy") else info.filename
            total += info.file_size
            if total > MAX_MODEL_FILE:
                raise EncodingError(f"its arrays hold over {MAX_MODEL_FILE} bytes")
            try:
                arrays[name] = z.read(info)
            except (zipfile.BadZipFile, OSError, NotImplementedError) as e:
                raise EncodingError(f"array {name}: {e}") from None
    if "shifts" not in arrays:
        raise EncodingError("no shifts array (want w{i}, b{i} per layer and shifts)")
    shape, shifts = _npy_ints(arrays["shifts"], "shifts")
    if len(shape) > 1 or not 1 <= len(shifts) <= MLP_MAX_LAYERS:
        raise EncodingError(f"shifts has shape {shape}: want one shift per layer, 1..{MLP_MAX_LAYERS} layers")
    layers = []
    for i, shift in enumerate(shifts):
        w, b = f"w{i}", f"b{i}"
        if not 0 <= shift <= MLP_MAX_SHIFT:
            raise EncodingError(f"shifts[{i}] is {shift}, want 0..{MLP_MAX_SHIFT}")
        if w not in arrays or b not in arrays:
            raise EncodingError(f"layer {i} needs arrays {w} and {b}")
        try:
            weights = Int8Matrix.from_npy(arrays[w])
        except EncodingError as e:
            raise EncodingError(f"{w}: {e}") from None
        bshape, biases = _npy_ints(arrays[b], b)
        if len(bshape) != 1 or len(biases) != weights.rows:
            raise EncodingError(f"{b} has shape {bshape}: want ({weights.rows},), one bias per row of {w}")
        for j, v in enumerate(biases):
            if not -_I32 <= v < _I32:
                raise EncodingError(f"{b}[{j}] is {v}, beyond int32")
        layers.append(MLPLayer(weights, tuple(biases), shift))
    for name in arrays:
        if name != "shifts" and name not in {f"{p}{i}" for i in range(len(shifts)) for p in "wb"}:
            raise EncodingError(f"array {name} is not part of a {len(shifts)}-layer model")
    return MLP(layers)

