"""Container output archives: read strictly, unpacked without escaping the directory.

These are attacker tests: a node that lies could serve any tar; the SDK must refuse
what a node would not write and never write outside the directory it was given.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import unittest
from pathlib import Path
from typing import List, Optional, Tuple

import support  # noqa: F401  (puts the SDK on sys.path)

from omnisync import ArchiveError, ContainerOutput, OutputFile, check_output_path, unpack_output, write_output


def tar_of(entries: List[Tuple[str, bytes, Optional[bytes]]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of (name, data, type) entries; type None is a regular file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data) if kind in (None, tarfile.REGTYPE) else 0
            if kind is not None:
                info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = data.decode()
            tf.addfile(info, io.BytesIO(data) if info.size else None)
    return buf.getvalue()


EXIT = ("exit_code", b"0\n", None)


class UnpackTest(unittest.TestCase):
    def test_well_formed(self) -> None:
        data = tar_of([("exit_code", b"-2\n", None), ("outputs/b/c.txt", b"c", None), ("outputs/a", b"", None)])
        out = unpack_output(data)
        self.assertEqual(out.exit_code, -2)
        self.assertEqual(out.files, [OutputFile("a", b""), OutputFile("b/c.txt", b"c")])
        self.assertEqual(out.read("b/c.txt"), b"c")

    def test_refuses_what_a_node_would_not_write(self) -> None:
        cases = {
            "no exit code": [("outputs/a", b"x", None)],
            "bad exit code": [("exit_code", b"zero\n", None)],
            "spaced exit code": [("exit_code", b" 0\n", None)],
            "symlink": [EXIT, ("outputs/link", b"/etc/passwd", tarfile.SYMTYPE)],
            "hard link": [EXIT, ("outputs/link", b"exit_code", tarfile.LNKTYPE)],
            "directory": [EXIT, ("outputs/d", b"", tarfile.DIRTYPE)],
            "fifo": [EXIT, ("outputs/f", b"", tarfile.FIFOTYPE)],
            "device": [EXIT, ("outputs/dev", b"", tarfile.CHRTYPE)],
            "parent escape": [EXIT, ("outputs/../../evil", b"x", None)],
            "inner parent": [EXIT, ("outputs/a/../b", b"x", None)],
            "dot element": [EXIT, ("outputs/./a", b"x", None)],
            "absolute": [EXIT, ("/etc/evil", b"x", None)],
            "absolute under outputs": [EXIT, ("outputs//etc/evil", b"x", None)],
            "backslash": [EXIT, ("outputs/a\\..\\b", b"x", None)],
            "trailing slash": [EXIT, ("outputs/a/", b"x", None)],
            "outside outputs": [EXIT, ("etc/passwd", b"x", None)],
            "outputs itself": [EXIT, ("outputs/", b"x", None)],
            "given twice": [EXIT, ("outputs/a", b"1", None), ("outputs/a", b"2", None)],
            "exit code twice": [EXIT, EXIT],
            "long element": [EXIT, ("outputs/" + "x" * 256, b"x", None)],
        }
        for name, entries in cases.items():
            with self.subTest(name), self.assertRaises(ArchiveError):
                unpack_output(tar_of(entries))

    def test_refuses_garbage_and_oversize(self) -> None:
        good = tar_of([EXIT, ("outputs/a", b"12345", None), ("outputs/b", b"6", None)])
        for name, data in {"empty": b"", "not tar": b"x" * 1024, "truncated": good[:700], "trailing junk": good + b"junk"}.items():
            with self.subTest(name), self.assertRaises(ArchiveError):
                unpack_output(data)
        with self.assertRaises(ArchiveError):
            unpack_output(good, max_files=1)
        with self.assertRaises(ArchiveError):
            unpack_output(good, max_bytes=7)
        self.assertEqual(len(unpack_output(good, max_files=2, max_bytes=8).files), 2)

    def test_check_output_path(self) -> None:
        for ok in ("a", "a/b", "é.txt", "a b/c"):
            check_output_path(ok)
        for bad in ("", ".", "..", "/a", "a//b", "a/", "a\x00b", "x" * 4097):
            with self.subTest(bad=bad), self.assertRaises(ArchiveError):
                check_output_path(bad)


class WriteTest(unittest.TestCase):
    def test_layout(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            paths = write_output(Path(d) / "new", ContainerOutput(1, [OutputFile("x/y.bin", b"\1\2")]))
            self.assertEqual([p.relative_to(d).as_posix() for p in paths], ["new/exit_code", "new/outputs/x/y.bin"])
            self.assertEqual((Path(d) / "new" / "outputs" / "x" / "y.bin").read_bytes(), b"\1\2")

    def test_follows_no_planted_symlink(self) -> None:
        with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as elsewhere:
            root = Path(d)
            os.symlink(elsewhere, root / "outputs")  # a directory link planted in the target
            with self.assertRaises(ArchiveError):
                write_output(root, ContainerOutput(0, [OutputFile("stolen", b"x")]))
            self.assertEqual(os.listdir(elsewhere), [])

    def test_replaces_nothing(self) -> None:
        with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as elsewhere:
            root = Path(d)
            (root / "outputs").mkdir()
            os.symlink(os.path.join(elsewhere, "victim"), root / "outputs" / "f")  # a dangling file link
            with self.assertRaises(FileExistsError):
                write_output(root, ContainerOutput(0, [OutputFile("f", b"x")]))
            self.assertFalse(os.path.exists(os.path.join(elsewhere, "victim")))
        with tempfile.TemporaryDirectory() as d:
            write_output(d, ContainerOutput(0, []))
            with self.assertRaises(FileExistsError):
                write_output(d, ContainerOutput(0, []))

    def test_rechecks_paths(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(ArchiveError):
                write_output(d, ContainerOutput(0, [OutputFile("../escape", b"x")]))
            self.assertFalse(os.path.exists(os.path.join(os.path.dirname(d), "escape")))


if __name__ == "__main__":
    unittest.main()
