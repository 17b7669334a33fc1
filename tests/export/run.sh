#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kselftest shape end to end, on fresh copies of Debian's kernel source trees (6.12, 6.1,
# and 6.12 rearranged in the 6.14 layout), so nothing outside a temporary directory is touched:
#
#   make export KDIR=copy   refuses a foreign file, is idempotent, and make unexport restores
#                           every file of the tree (checksums) and git status
#   make export-patches     gives a series that git am applies to exactly what export writes
#   the tree's own build    make -C tools/testing/selftests TARGETS=kvm builds our programs, with
#                           -mgeneral-regs-only on the guest code and only there (V=1 lines)
#   install + run           run_kselftest.sh -t kvm:<program> gives the verdicts the program
#                           gives when run directly and under mk/run-selftests.sh, within the
#                           KVM settings timeout; on a kvm_pvm host (no XSAVE) kvmfpu_swap_test's
#                           legacy variant passes and every other variant skips
#   make unexport           after the build: git status clean again, and after the tree's own
#                           make clean every file is as it was before export
#
# usage: tests/export/run.sh [VERSION...]   (default: 6.12 6.14-layout 6.1; needs the
#        linux-source-VERSION packages; 6.14-layout is the 6.12 tree rearranged, see below)
# env:   KVMFPU_EXPORT_BUILD=ours  build only the kvmfpu programs instead of all KVM selftests
#        KEEP=1                    keep the temporary directory
#        KVMFPU_EXPORT_TMP=DIR     where to put it (default /dev/shm if it has 6 GB free, else
#                                  $TMPDIR or /tmp); one tree (~2 GB) exists at a time
# Prints one line per check (KTAP-like); exits 0 when all passed, 1 on any deviation, 2 when
# it cannot run (no kernel source package).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
versions=${*:-6.12 6.14-layout 6.1}
# Kernel trees are ~1.5 GB of small files: unpacking, hashing and deleting them is several
# times faster in tmpfs, so /dev/shm is used when it has room (KVMFPU_EXPORT_TMP overrides).
tmp=${KVMFPU_EXPORT_TMP:-}
if [ -z "$tmp" ]; then
	tmp=${TMPDIR:-/tmp}
	if [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt 6000000 ]; then
		tmp=/dev/shm
	fi
fi
work=$(mktemp -d "$tmp/kvmfpu-export-test.XXXXXX")
cleanup() {
	if [ "${KEEP:-}" = 1 ]; then
		echo "# kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
n=0
start=$SECONDS

# A snapshot of the suite: others may edit lib/, guest_code/ and selftests/ while this runs,
# and every step must see the same sources.
src=$work/kvmfpu
mkdir -p "$src"
(cd "$top" && cp -a Makefile mk lib guest_code selftests "$src/")
export KVMFPU_DESCRIBE
KVMFPU_DESCRIBE=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)

ok() {
	n=$((n + 1))
	echo "ok $n $*"
}
fail() {
	n=$((n + 1))
	echo "not ok $n $*"
	echo "# kvmfpu export test: FAILED after $((SECONDS - start)) s (work dir: $work)"
	KEEP=1
	exit 1
}
check() {	# check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

# Every file's checksum and every path's type, .git excluded: the whole tree, byte for byte.
snapshot() {
	(cd "$1" && find . -path ./.git -prune -o -printf '%y %p\n' | LC_ALL=C sort &&
		find . -path ./.git -prune -o -type f -print0 | LC_ALL=C sort -z |
		xargs -0 sha256sum) >"$2"
}
same() {
	cmp -s "$1" "$2" || { diff "$1" "$2" | head -20 | sed 's/^/# /'; return 1; }
}
git_clean() {
	local s
	s=$(git -C "$1" status --porcelain)
	[ -z "$s" ] || { echo "$s" | head -20 | sed 's/^/# /'; return 1; }
}

# A fresh tree from the package, headers exported, as a git repository of its own.
prepare() {
	local v=$1 k=$work/linux-source-$1
	local tarball=/usr/src/linux-source-$v.tar.xz
	if [ -f "$tarball" ]; then
		tar -C "$work" -xf "$tarball"
	elif [ -d "$top/.cache/kdir/linux-source-$v" ]; then
		cp -a "$top/.cache/kdir/linux-source-$v" "$work/"
		rm -f "$k"/.kvmfpu-unpacked "$k"/.kvmfpu-headers
	else
		echo "# no $tarball (install linux-source-$v)" >&2
		exit 2
	fi
	nice -n 19 make -s -C "$k" headers >/dev/null
	# Debian's package .gitignore ignores everything at the top level ("/*"); drop that stanza
	# so that git status sees the tree as it sees an upstream checkout.
	python3 - "$k/.gitignore" <<-'EOF'
	import sys
	p = sys.argv[1]
	s = open(p).read()
	i = s.find("#\n# Debian packaging")
	if i >= 0:
	    open(p, "w").write(s[:i].rstrip("\n") + "\n")
	EOF
	git -C "$k" init -q
	git -C "$k" config gc.auto 0	# no background repack racing the clean-up
	git -C "$k" config core.looseCompression 1
	git -C "$k" add -A
	git -C "$k" -c user.name=kvmfpu-test -c user.email=test@kvmfpu.invalid \
		commit -q -m "linux-source-$v as packaged"
}

kmake() {	# make in the snapshot of kvmfpu, quietly
	make -s --no-print-directory -C "$src" "$@"
}

# Verdict lines of a KTAP stream, without the reasons: "ok|not ok N [NAME] [# SKIP]" (6.1's
# harness prints skips as "ok N # SKIP reason", without the test's name).
verdicts() {
	sed -n -E 's/^(# )?(ok|not ok) ([0-9]+)( [^ #]+)?( # SKIP)?.*/\2 \3\4\5/p' "$1" | sort
}

one_tree() {
	local v=$1 k=$work/linux-source-$1 t0=$SECONDS
	local kvm=$k/tools/testing/selftests/kvm
	local snap0=$work/snap0-$v snap=$work/snap-$v
	local arch=x86_64
	[ -f "$kvm/include/x86/processor.h" ] && arch=x86
	snapshot "$k" "$snap0"
	ok "$v: fresh tree ready in $((SECONDS - t_prep)) s ($arch layout)"

	# A file export did not put there: one line, exit 2, nothing changed.
	echo foreign >"$kvm/$arch/kvmfpu_swap_test.c"
	snapshot "$k" "$work/snapf"
	if kmake export KDIR="$k" 2>"$work/err" >/dev/null; then fail "$v: export refuses a foreign file"; fi
	check "$v: export refuses a foreign file with one line" \
		test "$(grep -c 'refusing to export' "$work/err")" = 1
	snapshot "$k" "$snap"
	check "$v: a refused export changes nothing" same "$work/snapf" "$snap"
	rm "$kvm/$arch/kvmfpu_swap_test.c"

	# Export, export again, unexport.
	kmake export KDIR="$k" >"$work/out"
	local srcs
	srcs=$(cd "$src" && ls lib/*.[chS] guest_code/*.[chS] selftests/*.c 2>/dev/null | wc -l)
	check "$v: export places all $srcs source files" \
		test "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["files"]))' \
			"$kvm/.kvmfpu-export.json")" = "$srcs"
	check "$v: programs registered in the tree's Makefile" \
		grep -q "^TEST_GEN_PROGS_$arch += $arch/kvmfpu_swap_test\$" "$kvm"/Makefile*
	snapshot "$k" "$work/snap1"
	kmake export KDIR="$k" >"$work/out"
	snapshot "$k" "$snap"
	check "$v: export again is a no-op" same "$work/snap1" "$snap"
	check "$v: ...and says so" grep -q "already exported, nothing changed" "$work/out"
	kmake unexport KDIR="$k" >"$work/out"
	snapshot "$k" "$snap"
	check "$v: unexport restores every file (checksums of the whole tree)" same "$snap0" "$snap"
	check "$v: unexport leaves git status clean" git_clean "$k"

	# export-patches: refused without git; with git, git am gives what export gives.
	mkdir -p "$work/nogit/tools/testing/selftests/kvm/lib"
	touch "$work/nogit/tools/testing/selftests/kvm/lib/kvm_util.c"
	if kmake export-patches KDIR="$work/nogit" OUT="$work/p" 2>"$work/err"; then
		fail "$v: export-patches refuses a tree that is not a git repository"
	fi
	check "$v: export-patches refuses a tree that is not a git repository" \
		grep -q "is not a git repository" "$work/err"
	local pdir=$work/patches-$v base
	base=$(git -C "$k" rev-parse HEAD)
	kmake export-patches KDIR="$k" OUT="$pdir" >/dev/null 2>"$work/err"
	local nprogs npatches
	nprogs=$(cd "$src" && ls selftests/*.c | wc -l)
	npatches=$(ls "$pdir"/*.patch | grep -vc 0000-cover-letter)
	check "$v: export-patches writes library, guest code, $nprogs programs, Makefile ($npatches)" \
		test "$npatches" = $((nprogs + 3))
	check "$v: every patch and the cover letter have a 'KVM: selftests:' subject" \
		test "$(grep -l '^Subject: \[PATCH [0-9]*/[0-9]*\] KVM: selftests: ' "$pdir"/*.patch |
			wc -l)" = $((npatches + 1))
	check "$v: every patch has a Signed-off-by" \
		test "$(ls "$pdir"/*.patch | grep -v 0000-cover-letter | xargs grep -l '^Signed-off-by: ' |
			wc -l)" = "$npatches"
	check "$v: export-patches leaves the tree and its git state alone" git_clean "$k"
	git -C "$k" -c user.name=kvmfpu-test -c user.email=test@kvmfpu.invalid \
		am -q $(ls "$pdir"/*.patch | grep -v 0000-cover-letter)
	local t_am t_export
	t_am=$(git -C "$k" rev-parse 'HEAD^{tree}')
	git -C "$k" reset -q --hard "$base"
	kmake export KDIR="$k" >/dev/null
	git -C "$k" add -A -- tools/testing/selftests/kvm
	t_export=$(git -C "$k" write-tree)
	git -C "$k" reset -q
	check "$v: git am of the series gives exactly the exported tree" test "$t_am" = "$t_export"

	# The tree's own build, install and runner. With -k, so that a program of the tree's own
	# that does not build (Debian's 6.1 dirty_log_test uses TEST_ASSERT_EQ, which 6.1 lacks)
	# does not hide ours; such failures are shown to happen without kvmfpu too, further down.
	local t1=$SECONDS blog=$work/build-$v.log ours_list broken=
	ours_list=$(sed -n "s|^TEST_GEN_PROGS_$arch += \($arch/kvmfpu_.*\)|\1|p" "$kvm"/Makefile*)
	if [ "${KVMFPU_EXPORT_BUILD:-full}" = ours ] || [ "$v" = 6.14-layout ]; then
		(cd "$kvm" && nice -n 19 make -j2 V=1 $(for p in $ours_list; do echo "$kvm/$p"; done)) \
			>"$blog" 2>&1 || { tail -20 "$blog"; fail "$v: build"; }
		ok "$v: make -C tools/testing/selftests/kvm <kvmfpu programs> in $((SECONDS - t1)) s"
	else
		nice -n 19 make -k -C "$k/tools/testing/selftests" TARGETS=kvm V=1 -j2 >"$blog" 2>&1 || true
		broken=$(sed -n -E "s|.*\*\*\* \[[^]]*: $kvm/([^]]+)\] Error.*|\1|p" "$blog" | sort -u)
		check "$v: make -C tools/testing/selftests TARGETS=kvm (all KVM selftests) builds every kvmfpu program, in $((SECONDS - t1)) s" \
			test -z "$(echo "$broken" | grep kvmfpu)"
		[ -z "$broken" ] || echo "# $v: the tree's own $(echo $broken) did not build; checked below without kvmfpu"
	fi
	for p in $ours_list; do
		[ -x "$kvm/$p" ] || fail "$v: $p built"
	done
	local guest_lines lib_lines
	guest_lines=$(grep -E " -c $arch/kvmfpu/guest_code/[^ ]+\.c" "$blog" | grep -c . || true)
	check "$v: guest code compiled with -mgeneral-regs-only ($guest_lines objects)" \
		test "$guest_lines" -gt 0 -a "$(grep -E " -c $arch/kvmfpu/guest_code/" "$blog" |
			grep -vc -- -mgeneral-regs-only)" = 0
	lib_lines=$(grep -E " -c $arch/kvmfpu/lib/|$arch/kvmfpu_[a-z0-9_]+\.c" "$blog" | grep -c . || true)
	check "$v: library and programs compiled without it ($lib_lines lines)" \
		test "$lib_lines" -gt 0 -a "$(grep -E " -c $arch/kvmfpu/lib/|$arch/kvmfpu_[a-z0-9_]+\.c" "$blog" |
			grep -c -- -mgeneral-regs-only)" = 0

	# install builds "all" first: with a program of the tree's own broken, install ours only.
	local inst=$work/install-$v limit=()
	[ -z "$broken" ] && [ "$v" != 6.14-layout ] || limit=("TEST_GEN_PROGS_$arch=$(echo $ours_list)")
	nice -n 19 make -s -C "$k/tools/testing/selftests" TARGETS=kvm install INSTALL_PATH="$inst" \
		"${limit[@]}" >"$work/install.log" 2>&1 || { tail "$work/install.log"; fail "$v: install"; }
	local progs p
	progs=$(cd "$src/selftests" && ls kvmfpu_*.c | sed 's/\.c$//')
	for p in $progs; do
		grep -qx "kvm:$p" "$inst/kselftest-list.txt" || fail "$v: kvm:$p in kselftest-list.txt"
		[ -x "$inst/kvm/$p" ] || fail "$v: $p installed"
	done
	ok "$v: install lists and installs $(echo $progs | wc -w) programs (flat names)"

	if [ ! -w /dev/kvm ]; then
		ok "$v: run under the kselftest runner # SKIP no usable /dev/kvm here"
	else
		for p in $progs; do
			local t2=$SECONDS rc=0
			(cd "$inst" && ./run_kselftest.sh -t "kvm:$p") >"$work/ks-$p.txt" 2>&1
			local secs=$((SECONDS - t2))
			(cd "$inst/kvm" && "./$p") >"$work/direct-$p.txt" 2>/dev/null || rc=$?
			local want="ok 1 selftests: kvm: $p"
			case $rc in
			0) ;;
			4) want="$want # SKIP" ;;
			*) want="not ok 1 selftests: kvm: $p # exit=$rc" ;;
			esac
			check "$v: $p under run_kselftest.sh: '$want' as its exit $rc says, in $secs s" \
				grep -qxF "$want" "$work/ks-$p.txt"
			check "$v: $p: the same verdict for every test as when run directly" \
				same <(verdicts "$work/direct-$p.txt") <(grep '^# ' "$work/ks-$p.txt" |
					verdicts /dev/stdin | grep -v "selftests: kvm: $p")
			check "$v: $p within the KVM settings timeout (120 s)" \
				test "$secs" -lt 120 -a -z "$(grep TIMEOUT "$work/ks-$p.txt")"
			# kselftest's convention (and docs/test-programs.md): every test skipped -> exit 4.
			local nres nskip
			nres=$(verdicts "$work/direct-$p.txt" | grep -c . || true)
			nskip=$(verdicts "$work/direct-$p.txt" | grep -c '# SKIP$' || true)
			local all_skipped=0
			[ "$nres" -gt 0 ] && [ "$nres" = "$nskip" ] && all_skipped=1
			if [ "$all_skipped" = 1 ] && [ "$rc" != 4 ]; then
				fail "$v: $p skipped every test but exited $rc, not 4"
			elif [ "$all_skipped" = 0 ] && [ "$rc" = 4 ]; then
				fail "$v: $p exited 4 (all skipped) but ran $((nres - nskip)) test(s)"
			else
				ok "$v: $p exits 4 exactly when it skipped every test (exit $rc, $nskip of $nres skipped)"
			fi
		done
		# Our own runner over the installed programs: the same counts as the kselftest run.
		local ours_rc=0
		"$src/mk/run-selftests.sh" "$inst/kvm" >"$work/ours.txt" 2>&1 || ours_rc=$?
		local pass skip failn
		pass=$(cat "$work"/ks-*.txt | grep -Ec '^# ok [0-9]+ [^#]*$' || true)
		skip=$(cat "$work"/ks-*.txt | grep -Ec '^# ok [0-9]+ .*# SKIP' || true)
		failn=$(cat "$work"/ks-*.txt | grep -Ec '^# not ok [0-9]+' || true)
		check "$v: mk/run-selftests.sh agrees: $pass passed, $failn failed, $skip skipped (exit $ours_rc)" \
			grep -qx "kvmfpu: $pass passed, $failn failed, $skip skipped" "$work/ours.txt"
		if [ -d /sys/module/kvm_pvm ]; then
			local d=$work/direct-kvmfpu_swap_test.txt
			check "$v: kvm_pvm host: kvmfpu_swap_test passes its legacy variant" \
				test "$(grep -cE '^ok [0-9]+ swap\.legacy\.[a-z_]+$' "$d")" -gt 0
			check "$v: kvm_pvm host: ...and skips every other variant" \
				test -z "$(grep -E '^(not )?ok ' "$d" | grep -v '^ok [0-9]* swap\.legacy\.' |
					grep -v '# SKIP')"
			check "$v: kvm_pvm host: ...and the kselftest runner says ok (exit 0)" \
				grep -qx "ok 1 selftests: kvm: kvmfpu_swap_test" "$work/ks-kvmfpu_swap_test.txt"
		fi
	fi

	# Unexport after a build: sources and their build products go, git status is clean; the
	# tree's own make clean then takes the rest of the build away: every file as before.
	kmake unexport KDIR="$k" >/dev/null
	check "$v: unexport after the build leaves git status clean" git_clean "$k"
	nice -n 19 make -s -C "$k/tools/testing/selftests" TARGETS=kvm clean >/dev/null 2>&1
	if [ -n "$broken" ]; then
		local b still=
		for b in $broken; do
			(cd "$kvm" && nice -n 19 make "$kvm/$b") >/dev/null 2>&1 || still="$still $b"
		done
		check "$v: what did not build ($(echo $broken)) does not build without kvmfpu either" \
			test "$(echo $still)" = "$(echo $broken)"
		nice -n 19 make -s -C "$k/tools/testing/selftests" TARGETS=kvm clean >/dev/null 2>&1
	fi
	snapshot "$k" "$snap"
	check "$v: ...and after make clean, every file of the tree is as before export" \
		same "$snap0" "$snap"
	ok "$v: done in $((SECONDS - t0)) s"
	# The 6.12 tree, as it was before export again, becomes the synthetic 6.14 one.
	[ "$v" = 6.12 ] && [[ " $versions " = *" 6.14-layout "* ]] || rm -rf "$k"
}

# 6.14 moved the x86 tests and library from x86_64/ to x86/ and the KVM Makefile's body into
# Makefile.kvm (ARCH=x86). No such tree is packaged here: this rebuilds the 6.12 tree in that
# layout (directories renamed, the Makefile split as upstream did) to try export's probing and
# Makefile edits, the tree's build rules and the runner on it. The library is still 6.12's.
prepare_614_layout() {
	local k=$work/linux-source-6.14-layout
	[ -d "$work/linux-source-6.12" ] || prepare 6.12
	mv "$work/linux-source-6.12" "$k"
	local kvm=$k/tools/testing/selftests/kvm
	mv "$kvm/x86_64" "$kvm/x86"
	mv "$kvm/include/x86_64" "$kvm/include/x86"
	mv "$kvm/lib/x86_64" "$kvm/lib/x86"
	python3 - "$kvm" <<-'EOF'
	import sys
	kvm = sys.argv[1]
	s = open(kvm + "/Makefile").read()
	s = s[:s.index("top_srcdir = ../../../..")] + s[s.index("LIBKVM += lib/assert.c"):]
	open(kvm + "/Makefile.kvm", "w").write(s.replace("x86_64", "x86").replace("ARCH_DIR", "ARCH"))
	open(kvm + "/Makefile", "w").write("""# SPDX-License-Identifier: GPL-2.0-only
	top_srcdir = ../../../..
	include $(top_srcdir)/scripts/subarch.include
	ARCH            ?= $(SUBARCH)

	ifeq ($(ARCH),$(filter $(ARCH),arm64 s390 riscv x86 x86_64))
	# Top-level selftests allows ARCH=x86_64 :-(
	ifeq ($(ARCH),x86_64)
		override ARCH := x86
	endif
	include Makefile.kvm
	else
	# Empty targets for unsupported architectures
	all:
	clean:
	endif
	""")
	open(kvm + "/.gitignore", "a").write("!Makefile.kvm\n")
	EOF
	git -C "$k" add -A
	git -C "$k" -c user.name=kvmfpu-test -c user.email=test@kvmfpu.invalid \
		commit -q -m "6.12 rearranged in the 6.14 layout"
}

for v in $versions; do
	t_prep=$SECONDS
	case $v in
	6.14-layout) prepare_614_layout ;;
	*)
		echo "# $v: unpacking a fresh tree"
		prepare "$v"
		;;
	esac
	one_tree "$v"
done
echo "# kvmfpu export test: all checks passed in $((SECONDS - start)) s"
echo "export: $n passed, 0 failed"
