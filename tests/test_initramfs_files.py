"""`gunyah boot --initramfs-file SRC:DEST` and `--run CMD`: the user's files
in our initramfs at their places, and the command our init runs; every
place and command checked before a boot starts."""

from __future__ import annotations

import gzip
import stat
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, gunyah
from hypothesis import given
from hypothesis import strategies as st
from test_boot_parts import _read_newc

from gunyah.boot import initramfs


def _archive(tmp_path: Path, files=(), run=None) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF busybox")
    return _read_newc(gzip.decompress(initramfs.build(busybox, [], "n0nce", files=files, run=run)))


def test_files_go_in_at_their_places_with_their_directories(tmp_path: Path) -> None:
    got = _archive(tmp_path, (("/vmm", b"vmm"), ("/vm/image", b"img"), ("/vm/dtb", b"dtb")))
    assert got["vmm"][1] == b"vmm" and got["vm/image"][1] == b"img" and got["vm/dtb"][1] == b"dtb"
    assert got["vmm"][0] == stat.S_IFREG | 0o755
    assert got["vm"][0] == stat.S_IFDIR | 0o755
    assert "run.sh" not in got
    assert "run exited" not in got["init"][1].decode()


def test_the_command_runs_from_its_own_file_after_the_modules(tmp_path: Path) -> None:
    cmd = '/vmm /vm/image "$(cat /x)"; echo done'
    got = _archive(tmp_path, run=cmd)
    assert got["run.sh"][1] == cmd.encode() + b"\n"
    init = got["init"][1].decode()
    assert cmd not in init  # nothing of the user's is read as init's own text
    assert init.index("done < /modules/order") < init.index("sh /run.sh") < init.index("poweroff")
    assert 'echo "gunyah-boot: run exited $?"' in init


@pytest.mark.parametrize("dest", [
    "vmm", "/", "/vm/", "//vmm", "/a/../vmm", "/./vmm", "/init", "/bin/sh", "/dev/gunyah",
    "/modules/x.ko", "/run.sh", "/tmp/x", "/proc/x", "/a b", "/a\nb", "/" + "x" * 65,
    "/a/b/c/d/e/f/g/h/i",
])  # fmt: skip
def test_places_of_ours_or_not_plain_are_refused(tmp_path: Path, dest: str) -> None:
    with pytest.raises(ValueError):
        initramfs.file_path(dest)
    with pytest.raises(ValueError):
        _archive(tmp_path, ((dest, b"x"),))


def test_a_file_where_another_needs_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="in the place of its directory"):
        _archive(tmp_path, (("/vm", b"a"), ("/vm/image", b"b")))
    with pytest.raises(ValueError, match="share a place"):
        _archive(tmp_path, (("/vm", b"a"), ("/vm", b"b")))


@given(st.text(max_size=80))
def test_file_path_takes_any_text_and_says_yes_or_valueerror(text: str) -> None:
    try:
        name = initramfs.file_path(text)
    except ValueError:
        return
    assert "/" + name == text and ".." not in name.split("/")


def test_cli_refusals(tmp_path: Path) -> None:
    f = tmp_path / "vmm"
    f.write_bytes(b"x")
    assert_usage_error(gunyah("boot", "--initramfs-file", f"{f}:/init"), "our init's")
    assert_usage_error(gunyah("boot", "--initramfs-file", str(f)), "give SRC:DEST")
    assert_usage_error(gunyah("boot", "--initramfs-file", f"{tmp_path / 'none'}:/x"),
                       "not a regular file")  # fmt: skip
    assert_usage_error(gunyah("boot", "--initramfs-file", f"{f}:/x", "--initramfs-file",
                              f"{f}:/x"), "given twice")  # fmt: skip
    assert_usage_error(gunyah("boot", "--run", "true", "--initrd", str(f)), "need our init")
