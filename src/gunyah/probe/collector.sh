# gunyah probe's collector: what `gunyah probe` reads, gathered read-only with
# POSIX sh and the tools of toybox (Android) or busybox, and written to
# standard output as a base64 tar.gz (a plain tar without gzip) between two
# marker lines: $1 (default "gunyah-capture: begin") and $2 ("... end").
# `gunyah probe --root FILE` reads what is between them, decoded.
#
# It reads only the paths named below, follows no link, takes at most 1 MiB
# of any file, and leaves nothing behind (its temporary directory goes, however
# it ends). Without root it takes what it may: what it may not read is listed
# in the capture's notes, and device nodes it cannot copy are described there.
#
# Only when GUNYAH_ACTIVE holds the active check's program (base64, as
# `gunyah probe --active` sends it) does it change anything: the program asks
# /dev/gunyah to create a VM with each ABI and destroys it at once; what it
# printed goes into the capture.
BEGIN=${1:-gunyah-capture: begin}
END=${2:-gunyah-capture: end}
MAX=1048576
T=${TMPDIR:-/data/local/tmp}
{ [ -d "$T" ] && [ -w "$T" ]; } || T=/tmp
C=$(mktemp -d "$T/gunyah-probe.XXXXXX") || { echo "gunyah-collector: no temporary directory in $T" >&2; exit 1; }
trap 'rm -rf "$C"' EXIT
trap 'exit 1' INT TERM HUP
UNREADABLE=""
NODES=""
ACCESS=""

quote() {  # a JSON string's inside: the paths here hold no quote, backslash or newline
    printf '%s' "$1" | tr -d '"\\\n'
}

unreadable() {
    UNREADABLE="$UNREADABLE${UNREADABLE:+, }\"$(quote "$1")\": \"$(quote "$2")\""
}

copy() {  # one regular file, never through a link, at most MAX bytes
    f=$1
    [ -L "/$f" ] && return 0
    [ -f "/$f" ] || return 0
    if [ ! -r "/$f" ]; then
        unreadable "$f" "permission denied"
        return 0
    fi
    mkdir -p "$C/${f%/*}"
    if ! head -c "$MAX" "/$f" > "$C/$f" 2>/dev/null; then
        rm -f "$C/$f"
        unreadable "$f" "cannot read"
    fi
}

node() {  # a device node or link, described: kind, mode, owner, and whether we may open it
    n=$1
    if [ -L "/$n" ]; then kind=link
    elif [ -c "/$n" ]; then kind=char
    elif [ -b "/$n" ]; then kind=block
    elif [ -d "/$n" ]; then kind=dir
    elif [ -e "/$n" ]; then kind=file
    else return 0
    fi
    set -- $(stat -c '%a %u %g' "/$n" 2>/dev/null) 0 0 0
    NODES="$NODES${NODES:+, }\"$n\": {\"kind\": \"$kind\", \"mode\": \"$1\", \"uid\": $2, \"gid\": $3}"
    if [ "$kind" != link ]; then
        if [ -r "/$n" ] && [ -w "/$n" ]; then open=true; else open=false; fi
        ACCESS="$ACCESS${ACCESS:+, }\"$n\": $open"
    fi
}

for base in proc/device-tree sys/firmware/devicetree/base; do
    if [ -d "/$base/hypervisor" ]; then
        mkdir -p "$C/$base/hypervisor"
        copy "$base/hypervisor/compatible"
        for d in "/$base/hypervisor"/*; do
            [ -d "$d" ] && [ ! -L "$d" ] || continue
            copy "$base/hypervisor/${d##*/}/compatible"
            mkdir -p "$C/$base/hypervisor/${d##*/}"
        done
    fi
    for d in "/$base/reserved-memory"/*; do
        [ -d "$d" ] && [ ! -L "$d" ] || continue
        case ${d##*/} in
            *hyp*|*gunyah*|*pvmfw*|*gzvm*|*geniezone*) mkdir -p "$C/$base/reserved-memory/${d##*/}" ;;
        esac
    done
done
for f in proc/cpuinfo proc/modules proc/version proc/sys/kernel/osrelease proc/bootconfig \
         sys/hypervisor/type sys/class/dmi/id/sys_vendor sys/class/dmi/id/product_name; do
    copy "$f"
done
[ -d /proc/xen ] && mkdir -p "$C/proc/xen"
for d in /sys/bus/*/drivers/*; do
    case ${d##*/} in
        gunyah*|gh_*) mkdir -p "$C$d" ;;
    esac
done
for n in dev/gunyah dev/kvm dev/gzvm; do
    node "$n"
done
for p in /dev/block/by-name/*; do
    case ${p##*/} in
        hyp|hyp_a|hyp_b|pvmfw|pvmfw_a|pvmfw_b) node "${p#/}" ;;
    esac
done
mkdir -p "$C/var/log" "$C/gunyah-collector"
if [ -n "${GUNYAH_ACTIVE:-}" ]; then  # before the log is read, so it shows the VM come and go
    if printf '%s\n' "$GUNYAH_ACTIVE" | base64 -d > "$C/.active" 2>/dev/null && chmod 700 "$C/.active"; then
        "$C/.active" /dev/gunyah 2>/dev/null | head -c 4096 > "$C/gunyah-collector/active"
        [ -s "$C/gunyah-collector/active" ] ||
            unreadable "gunyah-collector/active" "the active check did not run (is $T mounted noexec?)"
    else
        unreadable "gunyah-collector/active" "the active check did not unpack"
    fi
    rm -f "$C/.active"
fi
if dmesg 2>/dev/null | tail -n 20000 | head -c "$MAX" > "$C/var/log/dmesg" && [ -s "$C/var/log/dmesg" ]; then
    :
else
    rm -f "$C/var/log/dmesg"
    unreadable "var/log/dmesg" "the kernel log is not open to this user"
fi
if command -v getprop > /dev/null 2>&1; then
    getprop 2>/dev/null | grep '^\[ro\.boot\.hypervisor\.' | head -c "$MAX" > "$C/gunyah-collector/getprop"
fi
printf '{"captured_from": "collector", "unreadable": {%s}, "access": {%s}, "nodes": {%s}}\n' \
    "$UNREADABLE" "$ACCESS" "$NODES" > "$C/gunyah-probe-capture.json"
echo "$BEGIN"
if command -v gzip > /dev/null 2>&1; then
    (cd "$C" && tar -cf - .) | gzip -c | base64
else
    (cd "$C" && tar -cf - .) | base64
fi
echo "$END"
