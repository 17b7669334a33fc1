#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Prepare the default kernel tree (KDIR) from Debian's linux-source-<version> package: install
# the package if it is missing, unpack it into the git-ignored cache and export the UAPI headers
# once. Later builds find the stamp files and do nothing.
#
# usage: prepare-kdir.sh VERSION CACHE_DIR     (prints the tree's path on success)
set -eu

version=$1
cache=$2
tarball=/usr/src/linux-source-$version.tar.xz
tree=$cache/linux-source-$version

die() {
	echo "kvmfpu: $*" >&2
	exit 2
}

if [ ! -f "$tree/.kvmfpu-unpacked" ]; then
	if [ ! -f "$tarball" ]; then
		[ "$(id -u)" = 0 ] || die "$tarball missing: install linux-source-$version (as root) or pass KDIR=<kernel tree>"
		echo "kvmfpu: installing linux-source-$version" >&2
		apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
			"linux-source-$version" >&2 ||
			{ apt-get update >&2 && apt-get -o DPkg::Lock::Timeout=600 install -y \
				--no-install-recommends "linux-source-$version" >&2; } ||
			die "cannot install linux-source-$version"
	fi
	echo "kvmfpu: unpacking $tarball into $cache" >&2
	mkdir -p "$cache"
	rm -rf "$tree"
	tar -C "$cache" -xf "$tarball"
	touch "$tree/.kvmfpu-unpacked"
fi

if [ ! -f "$tree/.kvmfpu-headers" ]; then
	echo "kvmfpu: make headers in $tree" >&2
	make -s -C "$tree" headers >&2 || die "make headers failed in $tree"
	touch "$tree/.kvmfpu-headers"
fi
echo "$tree"
