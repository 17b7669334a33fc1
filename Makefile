# SPDX-License-Identifier: GPL-2.0
#
# kvmfpu: selftests for KVM's x86 FPU state handling.
#
#   make              build the test programs against KDIR's KVM selftest library
#   make run          build and run the tests against this machine's /dev/kvm (PROFILE=smoke)
#   make check        the project's own tests, the real KVM tests on this machine's /dev/kvm (if
#                     any), and the swap tests in the tcg and bochs labs on Debian's 6.12 kernel
#                     (LABS=tcg for one lab, LABS= for none); exit 2 if no KVM test ran at all
#   make static       statically linked programs, for a root filesystem without glibc (out/static)
#   make bench        verified swap cycles vs. bare KVM_RUN round trips
#   make lab-kasan    build Debian's 6.12 source with KASAN + X86_DEBUG_FPU (once, ~1 h on 2
#                     cores, kept in ~/.cache/kvmfpu) and run the swap and stress tests on it
#                     in the tcg lab (PROFILE=kasan, LAB=tcg)
#   make export KDIR=...   put the suite into KDIR's own KVM selftests (make unexport undoes it)
#   make export-patches KDIR=... OUT=DIR   the same change as a git format-patch series
#
# KDIR is a kernel tree with exported headers (make headers). Without it, the tree is prepared
# from Debian's linux-source-$(KDIR_VERSION) package into .cache/kdir (once).

KVMFPU_SRC := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
KDIR_VERSION ?= 6.12
CACHE := $(KVMFPU_SRC)/.cache/kdir
OUT_ROOT := $(KVMFPU_SRC)/out
PYTHON ?= python3

ifeq ($(origin KDIR),undefined)
KDIR_DEFAULT := 1
KDIR := $(CACHE)/linux-source-$(KDIR_VERSION)
endif
KDIR_ABS = $(abspath $(KDIR))
KNAME = $(notdir $(KDIR_ABS))
BUILD_OUT = $(OUT_ROOT)/$(KNAME)
STATIC_OUT = $(OUT_ROOT)/$(KNAME)-static
KVM_SELFTESTS = $(KDIR_ABS)/tools/testing/selftests/kvm

# Run the tree's own KVM selftests Makefile with ours overlaid (see mk/kvm-overlay.mk).
overlay_make = $(MAKE) $(if $(V),,-s) --no-print-directory -C $(KVM_SELFTESTS) -f Makefile \
	-f $(KVMFPU_SRC)/mk/kvm-overlay.mk KVMFPU_SRC=$(KVMFPU_SRC)

.PHONY: all build static run check unit bench lab-kasan kdir deps deps-check clean help
.PHONY: export unexport export-patches kdir-given

all: build

kdir:
ifdef KDIR_DEFAULT
	@$(KVMFPU_SRC)/mk/prepare-kdir.sh $(KDIR_VERSION) $(CACHE) >/dev/null
endif
	@$(KVMFPU_SRC)/mk/check-kdir.sh $(KDIR_ABS)

# BIN_LINK= leaves out/bin where it points (the labs build 6.1's programs this way for old
# kernels: runner/lab/binaries.py).
BIN_LINK ?= yes
build: kdir
	@$(overlay_make) OUTPUT=$(BUILD_OUT) kvmfpu-all
	$(if $(BIN_LINK),@ln -sfn $(KNAME)/kvmfpu $(OUT_ROOT)/bin)

# Plain -static drops the -pthread the KVM Makefile adds, hence the full set here. The labs do
# not use these: they boot the programs of `make` with the libraries they load
# (runner/lab/initramfs.py). STATIC_LINK= leaves out/static where it points.
STATIC_LINK ?= yes
static: kdir
	@$(overlay_make) OUTPUT=$(STATIC_OUT) LDFLAGS="-static -pthread -no-pie" kvmfpu-all
	$(if $(STATIC_LINK),@ln -sfn $(KNAME)-static/kvmfpu $(OUT_ROOT)/static)

# LABS: the labs `make check` boots Debian's 6.12 kernel in (mk/check.sh);
# LABS= leaves them out.
LABS ?= tcg bochs

deps:
	@$(KVMFPU_SRC)/mk/deps.sh

deps-check:
	@$(KVMFPU_SRC)/mk/deps.sh --check $(if $(strip $(LABS)),--lab)

# The runner plans PROFILE from configs/, runs it and writes results/<run-id>/ (results/README.md).
PROFILE ?= smoke
run: deps build
	@$(PYTHON) $(KVMFPU_SRC)/runner/kvmfpu run --profile $(PROFILE) --bin $(OUT_ROOT)/bin --ktap

unit: deps build
	@$(KVMFPU_SRC)/mk/run-unit.sh $(OUT_ROOT)/bin

check: deps-check build
	@$(KVMFPU_SRC)/mk/check.sh $(OUT_ROOT)/bin $(LABS)

# Long, not part of check or CI: a KASAN kernel under test (docs/labs.md "KASAN").
LAB ?= tcg
lab-kasan: deps-check build
	@$(PYTHON) $(KVMFPU_SRC)/runner/kvmfpu run --lab $(LAB) --kasan \
		--profile $(if $(filter command line environment,$(origin PROFILE)),$(PROFILE),kasan)

# BENCH_ARGS: e.g. --repeats 9 --seconds 2 (bench/kvmfpu_swap_bench.c)
bench: deps build
	@mkdir -p $(KVMFPU_SRC)/results
	@$(OUT_ROOT)/bin/kvmfpu_swap_bench $(BENCH_ARGS) --json $(KVMFPU_SRC)/results/bench.json
	@echo "written: results/bench.json"

# The kselftest shape (docs/kselftest.md): these write into KDIR, so it must be named.
KSELFTEST_EXPORT = $(PYTHON) $(KVMFPU_SRC)/mk/kselftest-export.py

kdir-given:
	@$(if $(KDIR_DEFAULT),echo "kvmfpu: this target writes into a kernel tree: name it with KDIR=<tree>" >&2; exit 2,:)

export: kdir-given
	@$(KSELFTEST_EXPORT) export $(KDIR_ABS)

unexport: kdir-given
	@$(KSELFTEST_EXPORT) unexport $(KDIR_ABS)

export-patches: kdir-given
	@$(if $(filter command line environment,$(origin OUT)),:,echo "kvmfpu: name the patch directory with OUT=<dir>" >&2; exit 2)
	@$(KSELFTEST_EXPORT) patches $(KDIR_ABS) $(OUT)

clean:
	rm -rf $(OUT_ROOT)

help:
	@sed -n '3,/^$$/s/^# \{0,1\}//p' $(KVMFPU_SRC)/Makefile
