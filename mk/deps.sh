#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Install what building and running kvmfpu needs on Debian 12, when it is missing.
# Needs root only when something is missing.
set -eu
pkgs="gcc make libc6-dev python3 xz-utils bc flex bison rsync"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "kvmfpu: missing packages:$missing (install them as root)" >&2
	exit 2
fi
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing >/dev/null ||
	{ apt-get update >/dev/null &&
	  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing >/dev/null; } ||
	{ echo "kvmfpu: cannot install:$missing" >&2; exit 2; }
