#!/usr/bin/env bash
# Sets up what `gunyah boot` needs on a Debian bookworm machine (amd64 or arm64):
# the Debian packages that run and build for an arm64 guest, and, in CACHE,
# the arm64 kernel Image, its kbuild headers and a static busybox.
# Usage: setup.sh CACHE   (run by `gunyah boot-setup`; apt needs root or sudo)
set -euo pipefail
cache="${1:?usage: setup.sh CACHE}"
series=6.1          # the kernel series of bookworm's linux-image-arm64
kbuild="/usr/lib/linux-kbuild-$series"

say() { printf 'boot-setup: %s\n' "$*" >&2; }
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else say "installing Debian packages needs root: run this as root or install sudo"; exit 1
    fi
}

have_tools() {
    command -v qemu-system-aarch64 >/dev/null && command -v aarch64-linux-gnu-gcc-12 >/dev/null \
        && command -v make >/dev/null && [ -d "$kbuild/scripts" ]
}

if [ -f "$cache/ready" ] && have_tools; then
    say "already set up in $cache (remove $cache/ready to set up again)"
    exit 0
fi

command -v apt-get >/dev/null || { say "needs a Debian-style system with apt-get"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64 && [ "$(dpkg --print-architecture)" != arm64 ]; then
    as_root dpkg --add-architecture arm64
fi
say "apt-get update"
as_root apt-get update -q -o=Dpkg::Use-Pty=0 >/dev/null
if ! have_tools; then
    say "installing qemu-system-arm gcc-aarch64-linux-gnu linux-kbuild-$series make"
    as_root apt-get install -y -q -o=Dpkg::Use-Pty=0 --no-install-recommends \
        qemu-system-arm gcc-aarch64-linux-gnu "linux-kbuild-$series" make >/dev/null
fi

# The ABI name of the kernel linux-image-arm64 points at, such as 6.1.0-56.
abi=$(apt-cache depends linux-image-arm64:arm64 \
      | sed -n 's/^ *Depends: linux-image-\([0-9.]*-[0-9]*\)-arm64\(:arm64\)\{0,1\}$/\1/p' | head -n 1)
[ -n "$abi" ] || { say "cannot tell which kernel linux-image-arm64:arm64 depends on"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gunyah-setup.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"   # apt-get download drops privileges to _apt
say "downloading linux-image-$abi-arm64, its headers and busybox-static (arm64)"
(cd "$work" && apt-get download -q -o=Dpkg::Use-Pty=0 \
    "linux-image-$abi-arm64:arm64" "linux-headers-$abi-arm64:arm64" \
    "linux-headers-$abi-common" "busybox-static:arm64" >/dev/null 2>&1) \
    || { say "apt-get download failed: is bookworm's main archive in the apt sources?"; exit 1; }

dest="$cache/$abi"
rm -rf "$dest.new" && mkdir -p "$dest.new/x"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest.new/x"; done
x="$dest.new/x"
cp "$x/boot/vmlinuz-$abi-arm64" "$dest.new/Image"       # already a raw arm64 Image
cp "$x/bin/busybox" "$dest.new/busybox"
mv "$x/usr/src/linux-headers-$abi-arm64" "$dest.new/headers"
mv "$x/usr/src/linux-headers-$abi-common" "$dest.new/common"
rm -rf "$x"
# Make the extracted headers usable without installing them: their kbuild
# links point at the host's linux-kbuild, and their Makefile includes the
# common tree by its installed path.
h="$dest.new/headers"
for tree in "$h" "$dest.new/common"; do
    for link in scripts tools; do rm -f "$tree/$link"; ln -s "$kbuild/$link" "$tree/$link"; done
done
sed -i "s|/usr/src/linux-headers-$abi-common|$dest/common|g" "$h/Makefile"
rm -rf "$dest" && mv "$dest.new" "$dest"
ln -sfn "$abi" "$cache/default"
touch "$cache/ready"
say "ready: kernel $abi in $dest"
