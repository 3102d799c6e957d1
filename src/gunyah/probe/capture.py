"""The capture: a tar of exactly what the probe read, for a bug report.

`--capture FILE` writes one (never over an existing file); `--root FILE`
reads one back in place, nothing extracted. A capture is untrusted input:
it is indexed in one pass with its size bounded (entries, bytes per entry,
bytes in all), and only its regular files are ever read: a link, hard or
symbolic, is reported as unreadable rather than followed.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import stat
import tarfile
import time
import zlib
from typing import Any

from .views import MAX_READ, NodeInfo, View

META = "gunyah-probe-capture.json"
MAX_ENTRIES = 100_000
MAX_BYTES = 64 << 20  # all regular files together; the probe reads a few dozen files
_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.SYMTYPE: "link",
    tarfile.LNKTYPE: "link",
    tarfile.FIFOTYPE: "fifo",
}
# what a damaged archive raises from inside tarfile, gzip, bz2 and lzma
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError)


class CaptureError(ValueError):
    """Not a capture the probe can read; the message names what is wrong."""


def _name(raw: str) -> str:
    name = raw
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name.rstrip("/")


class TarView(View):
    """A capture written by `--capture`, read in place."""

    def __init__(self, path: str) -> None:
        self.name = path
        self.nodes: dict[str, NodeInfo] = {}
        self.data: dict[str, bytes] = {}
        self.children: dict[str, set[str]] = {}
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block
        f = os.fdopen(fd, "rb")
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise CaptureError(f"{path}: not a regular file: not a probe capture")
            os.set_blocking(fd, True)
            tar = tarfile.open(fileobj=f)  # noqa: SIM115 (closed below)
        except _CORRUPT:
            f.close()
            raise CaptureError(f"{path}: not a probe capture (not a tar file)") from None
        except BaseException:
            f.close()
            raise
        try:
            with f, tar:
                self._index(tar)
        except CaptureError:
            raise
        except _CORRUPT as e:
            raise CaptureError(f"{path}: a damaged capture ({_why(e)})") from None
        self.meta = _meta(path, self.data.pop(META, None))
        self.unreadable: dict[str, str] = self.meta.get("unreadable", {})
        for name, node in self.meta.get("nodes", {}).items():  # the collector's descriptions
            if _name(name) and _name(name) not in self.nodes:
                self._add(_name(name), node)

    def _index(self, tar: tarfile.TarFile) -> None:
        """One pass over the archive, every member's data read as it comes, so
        nothing is decompressed twice and nothing oversized is read at all."""
        total = 0
        for count, m in enumerate(tar, 1):
            if count > MAX_ENTRIES:
                raise CaptureError(f"{self.name}: more than {MAX_ENTRIES} entries: "
                                   "not a probe capture")  # fmt: skip
            name = _name(m.name)
            if not name:
                continue
            kind = _KINDS.get(m.type, "other")
            self._add(name, NodeInfo(kind, m.mode & 0o7777, m.uid, m.gid, None))
            if kind != "file":
                continue
            if m.size > MAX_READ:
                raise CaptureError(f"{self.name}: entry {name} holds {m.size} bytes, more "
                                   "than a probe ever reads: not a probe capture")  # fmt: skip
            total += m.size
            if total > MAX_BYTES:
                raise CaptureError(f"{self.name}: more than {MAX_BYTES >> 20} MiB of files: "
                                   "not a probe capture")  # fmt: skip
            f = tar.extractfile(m)
            self.data[name] = f.read(MAX_READ) if f is not None else b""
            # members are yielded in archive order, so their data is read in one pass

    def _add(self, name: str, node: NodeInfo) -> None:
        self.nodes[name] = node
        parent, _, leaf = name.rpartition("/")
        self.children.setdefault(parent, set()).add(leaf)
        while parent:  # a file's directories exist even where not stored
            parent, _, leaf = parent.rpartition("/")
            known = self.children.setdefault(parent, set())
            if leaf in known:
                break
            known.add(leaf)

    def read(self, path: str, limit: int = MAX_READ, tail: bool = False) -> bytes:
        if path in self.unreadable:
            raise PermissionError(errno.EACCES, self.unreadable[path])
        node = self.nodes.get(path)
        if node is None:
            if path in self.children:
                raise IsADirectoryError(errno.EISDIR, "Is a directory")
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        if node.kind == "dir":
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        if node.kind != "file":
            raise OSError(errno.EINVAL, f"a {node.kind} in the capture: not read")
        data = self.data[path]
        return data[-limit:] if tail else data[:limit]

    def listdir(self, path: str) -> list[str]:
        names = self.children.get(path.rstrip("/"))
        if names is None:
            if path in self.nodes:
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory")
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        return sorted(names)

    def info(self, path: str) -> NodeInfo | None:
        node = self.nodes.get(path)
        if node is None:
            return None
        access = self.meta.get("access", {}).get(path)
        return NodeInfo(node.kind, node.mode, node.uid, node.gid, access)


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return (str(e) or type(e).__name__).splitlines()[0]


_NODE_KINDS = frozenset(_KINDS.values())


def _node(d: Any) -> NodeInfo | None:
    """A node the collector describes ({kind, mode (octal text), uid, gid}), or None."""
    if not isinstance(d, dict) or d.get("kind") not in _NODE_KINDS:
        return None
    uid, gid, mode = d.get("uid"), d.get("gid"), d.get("mode")
    if not (isinstance(uid, int) and isinstance(gid, int) and isinstance(mode, str)
            and 0 < len(mode) <= 6 and all(c in "01234567" for c in mode)):  # fmt: skip
        return None
    return NodeInfo(d["kind"], int(mode, 8) & 0o7777, uid, gid, None)


def _meta(path: str, blob: bytes | None) -> dict[str, Any]:
    """The capture's notes, checked for shape: {unreadable: {path: why}, access:
    {path: bool|null}, captured_from: str}, and from the collector, which cannot
    copy device nodes, nodes: {path: {kind, mode, uid, gid}}."""
    if blob is None:
        return {}
    bad = CaptureError(f"{path}: not a probe capture (its {META} is not what --capture writes)")
    try:
        meta = json.loads(blob)
    except (ValueError, RecursionError):
        raise bad from None
    if not isinstance(meta, dict):
        raise bad
    unreadable = meta.get("unreadable", {})
    access = meta.get("access", {})
    if not (
        isinstance(unreadable, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in unreadable.items())
        and isinstance(access, dict)
        and all(
            isinstance(k, str) and (v is None or isinstance(v, bool)) for k, v in access.items()
        )
    ):
        raise bad
    described = meta.get("nodes", {})
    nodes = {k: _node(v) for k, v in described.items()} if isinstance(described, dict) else None
    if nodes is None or any(not isinstance(k, str) or v is None for k, v in nodes.items()):
        raise bad
    return {"unreadable": unreadable, "access": access, "nodes": nodes}


def write(path: str, root: str, read: dict[str, bytes], unreadable: dict[str, str],
          nodes: dict[str, NodeInfo]) -> None:  # fmt: skip
    """A tar (gzip for .gz/.tgz) of what was read; refuses to replace a file."""
    f = open(path, "xb")  # noqa: SIM115 (removed below if writing fails)
    try:
        gz = path.endswith((".gz", ".tgz"))
        with f, tarfile.open(fileobj=f, mode="w:gz" if gz else "w") as tar:
            now = int(time.time())
            for name, data in sorted(read.items()):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = now
                tar.addfile(info, io.BytesIO(data))
            for name, node in nodes.items():
                info = tarfile.TarInfo(name)
                info.type = {"char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
                             "dir": tarfile.DIRTYPE}.get(node.kind, tarfile.REGTYPE)  # fmt: skip
                info.mode, info.uid, info.gid = node.mode, node.uid, node.gid
                tar.addfile(info)
            meta = {
                "captured_from": root,
                "unreadable": unreadable,
                "access": {n: node.readable for n, node in nodes.items()},
            }
            blob = json.dumps(meta, indent=2).encode()
            info = tarfile.TarInfo(META)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
