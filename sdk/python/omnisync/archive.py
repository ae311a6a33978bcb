"""A container job's output: the archive a node returns, read strictly and unpacked safely.

The archive (``api/archive.go``) is a tar holding ``exit_code`` (the command's exit status
in decimal and a newline) and ``outputs/<path>`` for each regular file the job left under
``/outputs``, nothing else. :func:`unpack_output` refuses anything a node would not have
written (another entry type, a path outside ``outputs/`` or with ``..``, a name given
twice, a missing exit code) and archives past given limits. :func:`write_output` then writes
the files under a directory so that no path lands outside it, following no symbolic link
and replacing no file already there.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Union

from .errors import ArchiveError

ARCHIVE_EXIT_CODE = "exit_code"
ARCHIVE_OUTPUTS = "outputs/"

DEFAULT_MAX_FILES = 100_000
DEFAULT_MAX_BYTES = 8 << 30


@dataclass(frozen=True)
class OutputFile:
    """One output file: its slash-separated path relative to ``/outputs``, and its bytes."""

    path: str
    data: bytes


@dataclass
class ContainerOutput:
    """A container job's unpacked output: the exit code and the files, sorted by path."""

    exit_code: int
    files: List[OutputFile] = field(default_factory=list)

    def as_dict(self) -> Dict[str, bytes]:
        """The files as {path: bytes}."""
        return {f.path: f.data for f in self.files}

    def read(self, path: str) -> bytes:
        """The bytes of the output file at path (relative to ``/outputs``); KeyError if absent."""
        for f in self.files:
            if f.path == path:
                return f.data
        raise KeyError(path)


def _utf8(p: str) -> bytes:
    return p.encode("utf-8", "surrogateescape")


def check_output_path(p: str) -> None:
    """Raise :class:`ArchiveError` unless p may name an output file: relative,
    slash-separated, clean, without ``.`` or ``..`` elements, NUL or backslash, at most
    255 bytes an element and 4096 in all (``api.CheckOutputPath``)."""
    ok = (
        p != ""
        and len(_utf8(p)) <= 4096
        and "\0" not in p
        and "\\" not in p
        and not p.startswith("/")
        and posixpath.normpath(p) == p
    )
    for e in p.split("/"):
        ok = ok and e not in (".", "..") and len(_utf8(e)) <= 255
    if not ok:
        raise ArchiveError(f"output path {p!r}")


def unpack_output(
    data: bytes, *, max_files: int = DEFAULT_MAX_FILES, max_bytes: int = DEFAULT_MAX_BYTES
) -> ContainerOutput:
    """Read a container job's output archive, as strictly as ``api.UnpackOutput``."""
    exit_code = None
    files: List[OutputFile] = []
    seen = set()
    total = 0
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:", errorlevel=2)
    except tarfile.TarError as e:
        raise ArchiveError(f"not a tar archive: {e}") from None
    with tf:
        while True:
            try:
                m = tf.next()
            except tarfile.TarError as e:
                raise ArchiveError(str(e)) from None
            if m is None:
                break
            if m.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise ArchiveError(f"{m.name!r} is not a regular file")
            if m.name in seen:
                raise ArchiveError(f"{m.name!r} given twice")
            seen.add(m.name)
            total += m.size
            if m.size < 0 or total > max_bytes:
                raise ArchiveError(f"more than {max_bytes} bytes")
            f = tf.extractfile(m)
            body = f.read() if f is not None else b""
            if len(body) != m.size:
                raise ArchiveError(f"{m.name!r} is truncated")
            if m.name == ARCHIVE_EXIT_CODE:
                text = body.decode("ascii", "replace")
                text = text[:-1] if text.endswith("\n") else text
                try:
                    if text.strip() != text or "_" in text:
                        raise ValueError
                    exit_code = int(text)
                except ValueError:
                    raise ArchiveError(f"exit code {body!r}") from None
                continue
            if not m.name.startswith(ARCHIVE_OUTPUTS):
                raise ArchiveError(f"{m.name!r} is outside {ARCHIVE_OUTPUTS}")
            p = m.name[len(ARCHIVE_OUTPUTS) :]
            check_output_path(p)
            if len(files) >= max_files:
                raise ArchiveError(f"more than {max_files} files")
            files.append(OutputFile(p, body))
        if any(data[tf.offset :]):
            # tarfile ends quietly at a corrupt header; Go's reader fails there.
            raise ArchiveError(f"corrupt header or data after the end of the archive at byte {tf.offset}")
    if exit_code is None:
        raise ArchiveError(f"no {ARCHIVE_EXIT_CODE}")
    files.sort(key=lambda f: _utf8(f.path))
    return ContainerOutput(exit_code, files)


_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _safe_dir_fd() -> bool:
    return os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")


def write_output(directory: Union[str, "os.PathLike[str]"], out: ContainerOutput) -> List[Path]:
    """Write ``exit_code`` and ``outputs/<path>`` for each file under directory (created
    with its parents if missing), the layout ``api.WriteOutput`` writes.

    Every path is checked again, every directory below ``directory`` is opened without
    following symbolic links, and no file already there is replaced (FileExistsError).
    Returns the paths written, the exit code's first.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    entries = [(ARCHIVE_EXIT_CODE, f"{out.exit_code}\n".encode("ascii"))]
    for f in out.files:
        check_output_path(f.path)
        entries.append((ARCHIVE_OUTPUTS + f.path, f.data))
    written = []
    for rel, data in entries:
        if _safe_dir_fd():
            _write_at(root, rel, data)
        else:  # pragma: no cover - platforms without dir_fd (Windows)
            _write_checked(root, rel, data)
        written.append(root.joinpath(*rel.split("/")))
    return written


def _write_at(root: Path, rel: str, data: bytes) -> None:
    """Create root/rel walking one directory at a time by file descriptor, so that no
    symbolic link planted below root (or raced in) can redirect a write outside it."""
    parts = rel.split("/")
    fd = os.open(str(root), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                nfd = os.open(part, _OPEN_DIR, dir_fd=fd)
            except OSError as e:
                raise ArchiveError(f"{rel!r}: {part!r} under {root} is not a plain directory ({e.strerror})") from None
            os.close(fd)
            fd = nfd
        wfd = os.open(parts[-1], _CREATE, 0o644, dir_fd=fd)
        with os.fdopen(wfd, "wb") as f:
            f.write(data)
    finally:
        os.close(fd)


def _write_checked(root: Path, rel: str, data: bytes) -> None:  # pragma: no cover
    base = root.resolve()
    target = base.joinpath(*rel.split("/"))
    cur = base
    for part in rel.split("/")[:-1]:
        cur = cur / part
        if cur.is_symlink():
            raise ArchiveError(f"{rel!r}: {cur} is a symbolic link")
        cur.mkdir(exist_ok=True)
    if os.path.commonpath([str(base), str(target.resolve())]) != str(base):
        raise ArchiveError(f"{rel!r} escapes {root}")
    with open(target, "xb") as f:
        f.write(data)
