#!/bin/bash
# Show that a lab bisect finds a kernel commit that breaks KVM's FPU switching.
#
#   runner/lab/bisect-demo.sh [--lab tcg|bochs] [--prepare-only]
#
# 1. Makes a git repository of Debian's linux-source-6.12 (from /usr/src) under
#    .cache/lab/bisect-demo/linux: a base commit (tag demo-good), then five commits, one of
#    which stops kvm_load_host_xsave_state() from restoring the host's XCR0 after a VM exit
#    (tag demo-bad is the last one).
# 2. Builds the base once (x86_64_defconfig + configs/labs/kernel.config, KVM built in; ~14
#    minutes on 2 cores, niced) so each bisect step is an incremental build.
# 3. Runs `runner/kvmfpu bisect --good demo-good --bad demo-bad` with the swap tests in the
#    lab, and checks that it names the breaking commit. Exit 0 if it does.
# Needs: runner/lab/deps.sh --kernel, linux-source-6.12, and `make` (out/bin).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${KVMFPU_BISECT_DEMO:-$repo/.cache/lab/bisect-demo}
tree=$work/linux
build=$work/build
lab=tcg
prepare_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--lab) lab=$2; shift 2 ;;
	--prepare-only) prepare_only=1; shift ;;
	*) echo "usage: $0 [--lab tcg|bochs] [--prepare-only]" >&2; exit 2 ;;
	esac
done
tarball=/usr/src/linux-source-6.12.tar.xz
[ -f "$tarball" ] || { echo "$tarball missing: apt-get install linux-source-6.12" >&2; exit 2; }

g() { git -C "$tree" -c user.name="kvmfpu demo" -c user.email=demo@kvmfpu.invalid "$@"; }

# A harmless commit: a comment line appended to FILE (still forces a rebuild of it).
harmless() {
	printf '\n/* kvmfpu bisect demo: %s */\n' "$2" >> "$tree/$1"
	g commit -q -am "$2"
}

make_base() {
	echo "demo: unpacking $tarball into $tree"
	rm -rf "$tree.tmp"
	mkdir -p "$tree.tmp"
	nice -n 19 tar -C "$tree.tmp" --strip-components=1 -xJf "$tarball"
	git -C "$tree.tmp" init -q
	mv "$tree.tmp" "$tree"
	echo "demo: committing the base tree (a minute or two)"
	# -f: Debian's .gitignore ignores everything at the top level (its packaging repo)
	nice -n 19 git -C "$tree" add -A -f
	g commit -q -m "Debian linux-source-6.12 as shipped"
	g tag demo-good
}

make_commits() {
	g checkout -q -f -B master demo-good
	harmless Documentation/virt/kvm/x86/index.rst "document nothing in particular"
	harmless arch/x86/kvm/x86.c "tidy a comment in x86.c"
	# The regression: after a VM exit the host keeps running with the guest's XCR0.
	python3 - "$tree/arch/x86/kvm/x86.c" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
old = ("\t\tif (vcpu->arch.xcr0 != kvm_host.xcr0)\n"
       "\t\t\txsetbv(XCR_XFEATURE_ENABLED_MASK, kvm_host.xcr0);\n")
i = s.index("void kvm_load_host_xsave_state")
j = s.find(old, i)
assert 0 < j < s.index("EXPORT_SYMBOL_GPL(kvm_load_host_xsave_state)"), \
    "kvm_load_host_xsave_state() changed shape"
s = s[:j] + "\t\t/* the guest's XCR0 is fine for the host too */\n" + s[j + len(old):]
open(p, "w").write(s)
EOF
	g commit -q -am "KVM: x86: skip the XCR0 write on VM exit

Saves an XSETBV per exit (it is not fine: the host keeps the guest's XCR0)."
	g tag -f demo-breaking
	harmless arch/x86/kernel/fpu/core.c "tidy a comment in fpu/core.c"
	harmless arch/x86/kvm/svm/svm.c "tidy a comment in svm.c"
	g tag -f demo-bad
}

[ -d "$tree/.git" ] || make_base
g rev-parse -q --verify demo-bad >/dev/null || make_commits
g log --oneline demo-good..demo-bad

# Warm the build directory at the good commit so bisect steps are incremental.
if [ ! -f "$build/arch/x86/boot/bzImage" ]; then
	g checkout -q demo-good
	echo "demo: first build of the base (about 14 minutes on 2 cores, niced)"
	start=$(date +%s)
	python3 "$repo/runner/kvmfpu" build-kernel --kernel-tree "$tree" --build-dir "$build"
	echo "demo: base build took $(( $(date +%s) - start )) s"
fi
g checkout -q demo-bad
[ "$prepare_only" = 1 ] && exit 0

[ -x "$repo/out/bin/kvmfpu_swap_test" ] || { echo "run make first" >&2; exit 2; }
out=$work/bisect.out
python3 "$repo/runner/kvmfpu" bisect --kernel-tree "$tree" --build-dir "$build" \
	--good demo-good --bad demo-bad --lab "$lab" --test kvmfpu_swap_test \
	--steps-dir "$work/steps-$(date +%Y%m%d-%H%M%S)" | tee "$out"
want=$(g rev-parse --short=12 demo-breaking)
if grep -q "^first bad commit: $want" "$out"; then
	echo "demo: PASS: bisect named the breaking commit $want"
else
	echo "demo: FAIL: bisect did not name $want" >&2
	exit 1
fi
