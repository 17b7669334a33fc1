#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Install what kvmfpu needs on Debian 12, when it is missing (root only then).
#   mk/deps.sh            building and running the tests
#   mk/deps.sh --check    also what the project's own tests use (GNU parallel, Chromium,
#                         python3-jsonschema for the KCIDB export's schema check)
#   mk/deps.sh --lab      also the labs' emulators and tools (runner/lab/deps.sh)
set -eu
pkgs="gcc make libc6-dev python3 xz-utils bc flex bison rsync"
lab=0
for arg in "$@"; do
	case $arg in
	--check) pkgs="$pkgs parallel chromium python3-jsonschema" ;;
	--lab) lab=1 ;;
	*) echo "usage: $0 [--check] [--lab]" >&2; exit 2 ;;
	esac
done

need_root() {
	[ "$(id -u)" = 0 ] && return 0
	echo "kvmfpu: missing $1 (install as root, or run this as root)" >&2
	exit 2
}

missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	need_root "packages:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null ||
		{ apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
		  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
			$missing >/dev/null; } ||
		{ echo "kvmfpu: cannot install:$missing" >&2; exit 2; }
fi

if [ $lab = 1 ]; then
	for tool in qemu-system-x86_64 bochs-bin busybox genisoimage; do
		command -v $tool >/dev/null && continue
		need_root "lab tools ($tool)"
		"$(dirname "$0")/../runner/lab/deps.sh" >/dev/null
		break
	done
fi
exit 0
