"""Job specs: what a consumer asks for, checked as the server checks it, hashed as Go hashes it.

A :class:`JobSpec` mirrors ``api.JobSpec`` field for field. Its hash, committed on chain by
the signed ``create_job`` transaction, is the SHA-256 of Go's JSON encoding of the spec, so
:meth:`JobSpec.to_json` writes exactly those bytes: fields in Go's declaration order,
``omitempty`` fields left out when empty. :meth:`JobSpec.validate` mirrors
``JobSpec.Validate`` (same field names, same limits) so a bad spec fails before anything
is signed or sent.

Amounts are integers in uomni (1 OMNI = 10**6 uomni); :func:`omni` converts from OMNI.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from . import _gojson
from .errors import SpecError

UOMNI_PER_OMNI = 1_000_000

WORKLOAD_TENSOR = "tensor"
WORKLOAD_CONTAINER = "container"
VERIFY_FREIVALDS = "freivalds"
VERIFY_REDUNDANT = "redundant"
VERIFY_CHALLENGE = "challenge"  # matrix products: hidden challenge rows, a share audited in full
VERIFY_AUDIT = "audit"  # any job: a share re-executed by a validator, the rest settled unchecked
VERIFY_ZK = "zk"  # mlp-int8 on one input row, proved; built by the Go CLI only (see _validate)
KERNEL_MATMUL_INT8 = "matmul-int8"  # [A, B] int8 → A·B int32, exact
KERNEL_MATMUL_FP32 = "matmul-fp32"  # [A, B] float32 → A·B float32, checked within a rounding bound
KERNEL_MLP_INT8 = "mlp-int8"  # [model, X] → the trace: accumulators and int8 output rows
KERNELS = (KERNEL_MATMUL_FP32, KERNEL_MATMUL_INT8, KERNEL_MLP_INT8)  # tensor.Kernels()

# Limits, as api/job.go declares them.
MAX_INPUTS = 16
MAX_INPUT_BYTES = 64 << 20
MAX_TIMEOUT = 7 * 24 * 3600
MAX_COMMAND_ARGS = 256
MAX_ENV = 128
MAX_WORKLOAD_TEXT = 4096

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
_INPUT_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")


def digest_of(data: bytes) -> str:
    """Return the ``sha256:<hex>`` digest of data, the form the API names content by."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def omni(amount: Union[str, int, Decimal]) -> int:
    """Convert an amount in OMNI (``"1.5"``, ``2``, ``Decimal("0.25")``) to uomni, exactly.

    Floats are refused: 0.1 OMNI is not a float. At most 6 decimals; not negative.
    """
    if isinstance(amount, float):
        raise TypeError("give OMNI amounts as str, int or Decimal, not float (e.g. omni('0.1'))")
    try:
        d = Decimal(amount)
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not a decimal OMNI amount") from None
    u = d * UOMNI_PER_OMNI
    if not d.is_finite() or d < 0 or u != u.to_integral_value():
        raise ValueError(f"{amount!r}: want a non-negative amount with at most 6 decimals")
    if u > _U64:
        raise ValueError(f"{amount!r} OMNI is more than a uint64 of uomni")
    return int(u)


def format_omni(uomni: int) -> str:
    """Render uomni as OMNI the way the Go CLI does: ``1500000`` is ``"1.5"``."""
    whole, frac = divmod(int(uomni), UOMNI_PER_OMNI)
    return str(whole) if frac == 0 else f"{whole}.{frac:06d}".rstrip("0")


@dataclass(frozen=True)
class Workload:
    """What runs: a built-in tensor kernel, or a container image (``api.Workload``)."""

    kind: str
    kernel: str = ""
    image: str = ""
    image_id: str = ""
    image_archive: str = ""
    command: Tuple[str, ...] = ()
    env: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        """The Go encoding's fields, in order, empty omitempty fields left out."""
        d: Dict[str, Any] = {"kind": self.kind}
        for name in ("kernel", "image", "image_id", "image_archive"):
            if getattr(self, name):
                d[name] = getattr(self, name)
        if self.command:
            d["command"] = list(self.command)
        if self.env:
            d["env"] = list(self.env)
        return d


@dataclass(frozen=True)
class Input:
    """One content-addressed input: its name (``/inputs/<name>`` in a container), digest and size."""

    name: str
    digest: str
    size: int

    @classmethod
    def of(cls, name: str, data: bytes) -> "Input":
        """The input declaring data under name."""
        return cls(name=name, digest=digest_of(data), size=len(data))

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Resources:
    """What one node must provide. A container job may ask for 0 GPUs; cpu_milli and
    memory_mib bound a container (0: the node's defaults)."""

    gpus: int = 1
    vram_mib: int = 0
    cpu_milli: int = 0
    memory_mib: int = 0

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"gpus": self.gpus, "vram_mib": self.vram_mib}
        if self.cpu_milli:
            d["cpu_milli"] = self.cpu_milli
        if self.memory_mib:
            d["memory_mib"] = self.memory_mib
        return d


@dataclass(frozen=True)
class Placement:
    """Where a job may run: a region, where the consumer is (for the latency score, in
    millionths of a degree) and the highest estimated round trip it accepts."""

    region: str = ""
    lat_e6: int = 0
    lon_e6: int = 0
    max_latency_ms: int = 0

    @classmethod
    def near(cls, lat: float, lon: float, *, region: str = "", max_latency_ms: int = 0) -> "Placement":
        """Placement from degrees, rounded to millionths as ``job submit --from`` does."""
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise SpecError("placement", f"({lat}, {lon}) is not a latitude and longitude in degrees")
        return cls(region=region, lat_e6=round(lat * 1e6), lon_e6=round(lon * 1e6), max_latency_ms=max_latency_ms)

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {}
        for name in ("region", "lat_e6", "lon_e6", "max_latency_ms"):
            if getattr(self, name):
                d[name] = getattr(self, name)
        return d


@dataclass(frozen=True)
class JobSpec:
    """Everything a consumer asks for (``api.JobSpec``); amounts in uomni."""

    workload: Workload
    inputs: Tuple[Input, ...] = ()
    resources: Resources = field(default_factory=Resources)
    placement: Placement = field(default_factory=Placement)
    max_price_per_hour: int = 0
    budget: int = 0
    timeout_seconds: int = 0
    verification: str = VERIFY_FREIVALDS

    def to_dict(self) -> Dict[str, Any]:
        """The spec as Go encodes it, as an ordered dict."""
        return {
            "workload": self.workload.to_dict(),
            "inputs": [i.to_dict() for i in self.inputs],
            "resources": self.resources.to_dict(),
            "placement": self.placement.to_dict(),
            "max_price_per_hour": self.max_price_per_hour,
            "budget": self.budget,
            "timeout_seconds": self.timeout_seconds,
            "verification": self.verification,
        }

    def to_json(self) -> bytes:
        """Go's ``json.Marshal`` of the spec: the bytes :meth:`hash` covers."""
        return _gojson.dumps(self.to_dict())

    def hash(self) -> str:
        """The spec's commitment, ``sha256:<hex>`` of :meth:`to_json` (``JobSpec.Hash``)."""
        return digest_of(self.to_json())

    def validate(self) -> None:
        """Raise :class:`SpecError` naming the first wrong field, as ``JobSpec.Validate`` would.

        It also checks what Go's types bound (uint64 amounts, int32 coordinates), which the
        server would refuse while decoding.
        """
        _validate(self)


def _err(f: str, msg: str) -> SpecError:
    return SpecError(f, msg)


def _text_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


def _check_int(name: str, v: Any, lo: int, hi: int, msg: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _err(name, msg)


def _check_str(name: str, v: Any) -> None:
    if not isinstance(v, str):
        raise _err(name, f"must be a string, not {type(v).__name__}")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise _err(name, "is not valid Unicode text") from None


def _validate(s: JobSpec) -> None:
    w = s.workload
    for name in ("kind", "kernel", "image", "image_id", "image_archive"):
        _check_str("workload." + name, getattr(w, name))
    for i, a in enumerate(w.command):
        _check_str(f"workload.command[{i}]", a)
    for i, e in enumerate(w.env):
        _check_str(f"workload.env[{i}]", e)
    if w.kind == WORKLOAD_TENSOR:
        if not w.kernel:
            raise _err("workload.kernel", "required for tensor workloads")
        if w.image or w.image_id or w.image_archive or w.command or w.env:
            raise _err("workload", "image, command and env are for container workloads")
        if not s.inputs:
            raise _err("inputs", "at least one input is required")
    elif w.kind == WORKLOAD_CONTAINER:
        _validate_container(s)
    elif w.kind == "":
        raise _err("workload.kind", "required (one of: tensor, container)")
    else:
        raise _err("workload.kind", f'"{w.kind}" is not supported (one of: tensor, container)')
    if len(s.inputs) > MAX_INPUTS:
        raise _err("inputs", f"at most {MAX_INPUTS} inputs")
    seen = set()
    for i, inp in enumerate(s.inputs):
        f = f"inputs[{i}]"
        _check_str(f + ".name", inp.name)
        if not valid_input_name(inp.name):
            raise _err(f + ".name", "must be 1-128 letters, digits, '.', '_' or '-', not starting with '.'")
        if inp.name in seen:
            raise _err(f + ".name", f'"{inp.name}" is given twice')
        seen.add(inp.name)
        if not isinstance(inp.digest, str) or not _DIGEST.match(inp.digest):
            raise _err(f + ".digest", "must be sha256:<64 lower-case hex digits>")
        _check_int(f + ".size", inp.size, 1, MAX_INPUT_BYTES, f"must be between 1 and {MAX_INPUT_BYTES} bytes")
    min_gpus = 0 if w.kind == WORKLOAD_CONTAINER else 1
    _check_int("resources.gpus", s.resources.gpus, min_gpus, 64, f"must be between {min_gpus} and 64")
    for name in ("vram_mib", "cpu_milli", "memory_mib"):
        _check_int("resources." + name, getattr(s.resources, name), 0, _U64, "must be a uint64")
    p = s.placement
    _check_str("placement.region", p.region)
    _check_int("placement.lat_e6", p.lat_e6, -90_000_000, 90_000_000, "latitude out of range")
    _check_int("placement.lon_e6", p.lon_e6, -180_000_000, 180_000_000, "longitude out of range")
    _check_int("placement.max_latency_ms", p.max_latency_ms, 0, _U32, "must be a uint32")
    _check_int("max_price_per_hour", s.max_price_per_hour, 1, _U64, "must be positive (uomni per GPU-hour)")
    _check_int("budget", s.budget, 1, _U64, "must be positive (uomni)")
    _check_int("timeout_seconds", s.timeout_seconds, 1, MAX_TIMEOUT, f"must be between 1 and {MAX_TIMEOUT}")
    _validate_level(s)


def _validate_level(s: JobSpec) -> None:
    """The verification level against the workload, as the switch ending
    ``api.JobSpec.Validate`` checks it, case for case and field for field.

    The zk level is built by the Go CLI only (``omnisync job submit --kernel mlp-int8
    --verify zk``): its spec carries commitments to the model and the salted input that are
    Poseidon2 hashes over BN254, which this SDK does not compute, so a zk spec made here
    lacks them and is refused where Go would refuse it for that reason ("zk").
    """
    w, v = s.workload, s.verification
    if v == VERIFY_ZK:
        if w.kind != WORKLOAD_TENSOR or w.kernel != KERNEL_MLP_INT8:
            raise _err("verification", f'"{VERIFY_ZK}" proves the {KERNEL_MLP_INT8} kernel only')
        if len(s.inputs) != 2:
            raise _err("inputs", f"{KERNEL_MLP_INT8} takes 2 inputs [model, input], got {len(s.inputs)}")
        raise _err(
            "zk",
            f'required for verification "{VERIFY_ZK}": its commitments are Poseidon2 over BN254, which only the Go CLI '
            f"computes (omnisync job submit --kernel {KERNEL_MLP_INT8} --verify zk); this SDK runs {KERNEL_MLP_INT8} "
            f'at "{VERIFY_FREIVALDS}" or "{VERIFY_AUDIT}"',
        )
    if w.kernel == KERNEL_MLP_INT8 and v in (VERIFY_FREIVALDS, VERIFY_AUDIT):
        if len(s.inputs) != 2:
            raise _err("inputs", f"{KERNEL_MLP_INT8} takes 2 inputs [model, X], got {len(s.inputs)}")
    elif w.kernel == KERNEL_MLP_INT8:
        raise _err(
            "verification",
            f'the {KERNEL_MLP_INT8} kernel is checked layer by layer ("{VERIFY_FREIVALDS}", or "{VERIFY_AUDIT}" for a share '
            f'of jobs) or by its proof ("{VERIFY_ZK}")',
        )
    elif w.kernel == KERNEL_MATMUL_FP32 and v == VERIFY_CHALLENGE:
        raise _err(
            "verification",
            f'"{VERIFY_CHALLENGE}" hides exact int8 rows and cannot check {KERNEL_MATMUL_FP32}: use "{VERIFY_FREIVALDS}" or "{VERIFY_AUDIT}"',
        )
    elif w.kernel == KERNEL_MATMUL_FP32 and v == VERIFY_REDUNDANT:
        raise _err(
            "verification",
            f'"{VERIFY_REDUNDANT}" compares outputs bit for bit, and honest GPUs sum {KERNEL_MATMUL_FP32} in different orders: '
            f'use "{VERIFY_FREIVALDS}" or "{VERIFY_AUDIT}"',
        )
    elif v in (VERIFY_REDUNDANT, VERIFY_AUDIT):
        pass
    elif v in (VERIFY_FREIVALDS, VERIFY_CHALLENGE) and w.kind == WORKLOAD_TENSOR:
        pass
    elif v in (VERIFY_FREIVALDS, VERIFY_CHALLENGE):
        raise _err(
            "verification",
            f'{v} checks matrix products only; a container job needs "{VERIFY_REDUNDANT}" or "{VERIFY_AUDIT}"',
        )
    else:
        raise _err(
            "verification",
            f'"{v}" is not supported (one of: {VERIFY_CHALLENGE}, {VERIFY_FREIVALDS}, {VERIFY_AUDIT}, {VERIFY_REDUNDANT}, {VERIFY_ZK})',
        )


def _validate_container(s: JobSpec) -> None:
    w = s.workload
    if w.kernel:
        raise _err("workload.kernel", "is for tensor workloads")
    if not w.image and not w.image_id:
        raise _err("workload.image", "required (or workload.image_id) for container workloads")
    if _text_len(w.image) > MAX_WORKLOAD_TEXT or any(c in w.image for c in " \t\n\0"):
        raise _err("workload.image", "must be an image reference (name:tag) without spaces")
    if w.image_id and not _DIGEST.match(w.image_id):
        raise _err("workload.image_id", "must be sha256:<64 lower-case hex digits>")
    if w.image_archive and not any(i.name == w.image_archive for i in s.inputs):
        raise _err("workload.image_archive", f'names no input ("{w.image_archive}")')
    if len(w.command) > MAX_COMMAND_ARGS:
        raise _err("workload.command", f"at most {MAX_COMMAND_ARGS} arguments")
    for i, a in enumerate(w.command):
        if _text_len(a) > MAX_WORKLOAD_TEXT or "\0" in a:
            raise _err(f"workload.command[{i}]", f"at most {MAX_WORKLOAD_TEXT} bytes and no NUL")
    if len(w.env) > MAX_ENV:
        raise _err("workload.env", f"at most {MAX_ENV} entries")
    for i, e in enumerate(w.env):
        k, sep, _ = e.partition("=")
        if not sep or not k or _text_len(e) > MAX_WORKLOAD_TEXT or "\0" in e:
            raise _err(f"workload.env[{i}]", f"must be KEY=VALUE, at most {MAX_WORKLOAD_TEXT} bytes")
        if k.startswith("NVIDIA_"):
            raise _err(f"workload.env[{i}]", "NVIDIA_* is reserved for the node's runtime")


def valid_input_name(name: str) -> bool:
    """Report whether name can name an input: one plain path element, ``/inputs/<name>``."""
    return bool(_INPUT_NAME.match(name)) and not name.startswith(".")


def env_list(env: Union[None, Sequence[str], Dict[str, str]]) -> Tuple[str, ...]:
    """Turn ``{"K": "V"}`` (kept in its order) or ``["K=V"]`` into the spec's env entries."""
    if env is None:
        return ()
    if isinstance(env, dict):
        return tuple(f"{k}={v}" for k, v in env.items())
    if isinstance(env, str):
        raise TypeError("env must be a dict or a list of 'KEY=VALUE' strings, not a str")
    return tuple(env)


def container_spec(
    image: str,
    *,
    inputs: Sequence[Input] = (),
    command: Sequence[str] = (),
    env: Union[None, Sequence[str], Dict[str, str]] = None,
    image_id: str = "",
    image_archive: str = "",
    gpus: int = 0,
    vram_mib: int = 0,
    cpu_milli: int = 0,
    memory_mib: int = 0,
    budget: int = UOMNI_PER_OMNI,
    max_price_per_hour: int = 3 * UOMNI_PER_OMNI,
    timeout_seconds: int = 600,
    placement: Optional[Placement] = None,
    verification: str = VERIFY_REDUNDANT,
) -> JobSpec:
    """Build and validate a container job's spec: ``redundant`` (three nodes, the default)
    or ``audit`` (one node; a share of jobs re-executed by a validator)."""
    if isinstance(command, str):
        raise TypeError("command must be a list of arguments, not a str")
    spec = JobSpec(
        workload=Workload(
            kind=WORKLOAD_CONTAINER,
            image=image,
            image_id=image_id,
            image_archive=image_archive,
            command=tuple(command),
            env=env_list(env),
        ),
        inputs=tuple(inputs),
        resources=Resources(gpus=gpus, vram_mib=vram_mib, cpu_milli=cpu_milli, memory_mib=memory_mib),
        placement=placement or Placement(),
        max_price_per_hour=max_price_per_hour,
        budget=budget,
        timeout_seconds=timeout_seconds,
        verification=verification,
    )
    spec.validate()
    return spec


def tensor_spec(
    inputs: Sequence[Input],
    *,
    kernel: str = KERNEL_MATMUL_INT8,
    gpus: int = 1,
    vram_mib: int = 0,
    budget: int = UOMNI_PER_OMNI,
    max_price_per_hour: int = 3 * UOMNI_PER_OMNI,
    timeout_seconds: int = 300,
    verification: str = VERIFY_FREIVALDS,
    placement: Optional[Placement] = None,
) -> JobSpec:
    """Build and validate a tensor job's spec (the Go CLI's defaults: 1 OMNI budget, at most
    3 OMNI per GPU-hour, 5 minutes, Freivalds' check). ``kernel`` is one of ``KERNELS``;
    each allows the levels ``api.JobSpec.Validate`` allows it (see ``_validate_level``)."""
    spec = JobSpec(
        workload=Workload(kind=WORKLOAD_TENSOR, kernel=kernel),
        inputs=tuple(inputs),
        resources=Resources(gpus=gpus, vram_mib=vram_mib),
        placement=placement or Placement(),
        max_price_per_hour=max_price_per_hour,
        budget=budget,
        timeout_seconds=timeout_seconds,
        verification=verification,
    )
    spec.validate()
    return spec
