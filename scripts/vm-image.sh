#!/usr/bin/env bash
# Build (once per machine) the Debian 13 VM image the VM tests boot: a stock debootstrap
# userland with a kernel, systemd, openssh-server and cloud-init, nothing alembic-specific.
# The image lives in a cache directory keyed by the hash of the recipe below, so a changed
# recipe builds a new image and an unchanged one is reused. Building happens under a lock in
# a temp directory that is renamed into place only when complete: a crashed build never leaves
# a half-written image behind, and two concurrent callers build it once.
#
# Usage: scripts/vm-image.sh            prints the image directory (disk.img, vmlinuz, initrd)
#        scripts/vm-image.sh --key      prints only the recipe key
# Environment: ALEMBIC_VM_CACHE (default /var/cache/alembic-vm).
# Needs root (debootstrap, mkfs.ext4 -d); the tests only read the result.
set -euo pipefail

suite=trixie
mirror=http://deb.debian.org/debian
variant=minbase
include=systemd-sysv,linux-image-amd64,openssh-server,cloud-init,python3-cffi-backend,e2fsprogs,ca-certificates,iproute2,ifupdown,isc-dhcp-client,sudo,netbase
size=4G
interfaces='auto lo
iface lo inet loopback
auto ens3
iface ens3 inet dhcp
'

# Every step that shapes the image (the build function below, including the DHCP stanza it
# writes and the filesystem it makes) and every input is part of the key: a changed step builds
# a new image instead of silently reusing one the old recipe made. Comments are not (declare -f
# prints the function's code only).
build_image() {
  local root=$1 out=$2 log=$3
  debootstrap --variant="$variant" --include="$include" "$suite" "$root" "$mirror" \
    >"$log" 2>&1 || {
    tail -n 30 "$log" >&2
    return 1
  }
  printf '%s' "$interfaces" >"$root/etc/network/interfaces"
  mkdir "$out"
  cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
  cp "$root"/boot/initrd.img-* "$out/initrd"
  mkfs.ext4 -q -F -d "$root" "$out/disk.img" "$size"
  chmod 0444 "$out/disk.img" "$out/vmlinuz" "$out/initrd"
}
key=$({
  printf '%s\n' "v2" "$suite" "$mirror" "$variant" "$include" "$size" "$interfaces"
  declare -f build_image
} | sha256sum | cut -c1-16)
if [ "${1:-}" = "--key" ]; then
  echo "$key"
  exit 0
fi

cache="${ALEMBIC_VM_CACHE:-/var/cache/alembic-vm}"
dest="$cache/$key"
if [ -f "$dest/disk.img" ] && [ -f "$dest/vmlinuz" ] && [ -f "$dest/initrd" ]; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock-$key"
flock 9
# Another caller may have finished the build while this one waited for the lock.
if [ -f "$dest/disk.img" ]; then
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache/.build-$key.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

echo "vm-image: building $key (debootstrap $suite, a few minutes)" >&2
root="$work/rootfs"
out="$work/image"
t0=$SECONDS
# Called plainly (not in an `||` list), so set -e stops at the first failing step. Its tools'
# chatter (mkfs.ext4 -d lists the files it copies) goes to stderr: stdout carries only the
# image directory, which callers read.
build_image "$root" "$out" "$work/debootstrap.log" >&2
echo "vm-image: built $key in $((SECONDS - t0)) s" >&2
mv -T "$out" "$dest"
echo "$dest"
