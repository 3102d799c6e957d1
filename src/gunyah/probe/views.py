"""Views of a system tree, read as if its root were `/`.

The user points the probe at a root (`/`, a copied tree, or a capture); it
reads nothing outside it. Paths are resolved inside the root the way the
kernel's openat2(RESOLVE_IN_ROOT) resolves them: every component is opened
relative to its parent with O_NOFOLLOW, a link is read and its target
resolved again inside the root (an absolute target starts at the root, `..`
stops at it), so no link, however spelled, leads out. Only regular files are
opened for reading, never a FIFO, socket or device (they can block or have
side effects), with one exception: the kernel's log device (char 1:11) at
dev/kmsg, read without blocking.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from types import TracebackType

MAX_READ = 4 << 20  # per file: a probe reads evidence, not whole disks
MAX_LINKS = 40  # links followed in one path, as the kernel's MAXSYMLINKS
MAX_ENTRIES = 100_000  # names in one directory listing
KMSG = "dev/kmsg"
KMSG_DEVICE = os.makedev(1, 11)  # the kernel log's char device (devices.txt: mem 11)


@dataclass(frozen=True)
class NodeInfo:
    kind: str  # "file", "dir", "char", "block", "link", "fifo", "socket", "other"
    mode: int
    uid: int
    gid: int
    readable: bool | None  # by the probing user; None where not known


def kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISLNK, "link"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "other"


def not_regular(kind: str) -> OSError:
    return OSError(errno.EINVAL, f"a {kind}, not a regular file: not opened")


class View:
    """Read-only access to a system tree, by paths relative to its root."""

    name: str

    def read(self, path: str, limit: int = MAX_READ, tail: bool = False) -> bytes:
        """At most `limit` bytes: the first ones, or with `tail` the last ones."""
        raise NotImplementedError

    def listdir(self, path: str) -> list[str]:
        raise NotImplementedError

    def info(self, path: str) -> NodeInfo | None:
        """What the last component is (a link is a link), None where absent."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of what the view holds open."""

    def __enter__(self) -> View:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DirView(View):
    """A directory tree: `/` itself, or a copy of one."""

    def __init__(self, root: str) -> None:
        self.name = root
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # the running system, however `/` is spelled: only there does access() mean anything
        self.live = os.path.samestat(os.fstat(self.fd), os.stat("/"))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _walk(self, path: str, follow_last: bool) -> tuple[int, str]:
        """(an fd of the parent directory, the last name), resolved inside the root.
        The caller closes the fd. The last name is "" for the root itself."""
        todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
        dirs = [os.dup(self.fd)]  # the directories walked through, root first
        links = 0
        try:
            while todo:
                name = todo.pop()
                if name == "..":
                    if len(dirs) > 1:
                        os.close(dirs.pop())
                    continue
                if not todo and not follow_last:
                    return dirs.pop(), name
                st = os.stat(name, dir_fd=dirs[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_LINKS:
                        raise OSError(errno.ELOOP, "too many levels of links")
                    target = os.readlink(name, dir_fd=dirs[-1])
                    if target.startswith("/"):
                        while len(dirs) > 1:
                            os.close(dirs.pop())
                    todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
                    continue
                if not todo:
                    return dirs.pop(), name
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                dirs.append(os.open(name, flags, dir_fd=dirs[-1]))
            return dirs.pop(), ""
        finally:
            for fd in dirs:
                os.close(fd)

    def read(self, path: str, limit: int = MAX_READ, tail: bool = False) -> bytes:
        parent, name = self._walk(path, follow_last=True)
        try:
            if not name:
                raise IsADirectoryError(errno.EISDIR, "Is a directory")
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            kmsg = path == KMSG and stat.S_ISCHR(st.st_mode) and st.st_rdev == KMSG_DEVICE
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory")
            if not (stat.S_ISREG(st.st_mode) or kmsg):
                raise not_regular(kind_of(st.st_mode))
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
            fd = os.open(name, flags, dir_fd=parent)
        finally:
            os.close(parent)
        try:
            now = os.fstat(fd)  # what was opened, should the tree have changed meanwhile
            if kmsg and stat.S_ISCHR(now.st_mode) and now.st_rdev == KMSG_DEVICE:
                return _read_kmsg(fd, limit)
            if not stat.S_ISREG(now.st_mode):
                raise not_regular(kind_of(now.st_mode))
            if tail:
                os.lseek(fd, max(0, now.st_size - limit), os.SEEK_SET)
            # small reads: procfs refuses a single read the size of `limit`
            out = bytearray()
            while len(out) < limit and (chunk := os.read(fd, min(65536, limit - len(out)))):
                out += chunk
            return bytes(out)
        finally:
            os.close(fd)

    def listdir(self, path: str) -> list[str]:
        parent, name = self._walk(path, follow_last=True)
        try:
            if not name:
                fd = os.dup(parent)
            else:
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(name, flags, dir_fd=parent)
        finally:
            os.close(parent)
        names = []
        with os.scandir(fd) as it:  # scandir closes fd
            for entry in it:
                names.append(entry.name)
                if len(names) > MAX_ENTRIES:
                    raise OSError(errno.E2BIG, f"more than {MAX_ENTRIES} entries: not listed")
        return sorted(names)

    def info(self, path: str) -> NodeInfo | None:
        try:
            parent, name = self._walk(path, follow_last=False)
        except OSError:
            return None
        try:
            st = os.stat(name or ".", dir_fd=parent, follow_symlinks=False)
            readable = None
            if self.live and not stat.S_ISLNK(st.st_mode):
                readable = os.access(name or ".", os.R_OK, dir_fd=parent)
        except OSError:
            return None
        finally:
            os.close(parent)
        mode = st.st_mode
        return NodeInfo(kind_of(mode), stat.S_IMODE(mode), st.st_uid, st.st_gid, readable)


def _read_kmsg(fd: int, limit: int) -> bytes:
    """/dev/kmsg hands out one record per read and blocks at the end: the fd is
    non-blocking, so reading stops when it has nothing more."""
    out = bytearray()
    while len(out) < limit:
        try:
            record = os.read(fd, 8192)
        except BlockingIOError:
            break
        except OSError as e:
            if e.errno == errno.EPIPE:  # a record was overwritten; go on
                continue
            raise
        if not record:
            break
        out += record
    return bytes(out[:limit])
