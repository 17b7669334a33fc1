#!/bin/sh
# Install what the kvmfpu labs need on Debian 12 (run as root; CI runs it on a fresh machine).
#   runner/lab/deps.sh            tcg + bochs labs (emulators, busybox, ISO tools)
#   runner/lab/deps.sh --kernel   also what kernel builds, bisect and bisect-demo.sh need
# The Debian kernel image itself is fetched later, on demand, by `apt-get download` into
# .cache/lab/ (see runner/lab/kernel.py); it is not installed on the host.
set -eu
# zstd: unpacks Debian's kernel for the QEMU labs' PVH boot (runner/lab/pvh.py).
pkgs="python3 qemu-system-x86 busybox-static bochs bochsbios vgabios isolinux syslinux-common
      genisoimage zstd"
if [ "${1:-}" = "--kernel" ]; then
	pkgs="$pkgs build-essential bc bison flex libelf-dev libssl-dev git xz-utils
	      linux-source-6.12"
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: run as root (apt-get install)" >&2
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $pkgs
