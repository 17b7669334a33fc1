# SPDX-License-Identifier: GPL-2.0
#
# Overlay on a kernel tree's tools/testing/selftests/kvm/Makefile. The top-level Makefile runs
#   make -C $(KDIR)/tools/testing/selftests/kvm -f Makefile -f <this file> OUTPUT=... kvmfpu-all
# so everything that Makefile defines for its own tests (CC, CFLAGS with the tree's include
# paths, LDFLAGS, LDLIBS, LIBKVM_OBJS and their rules) is used unchanged, as that kernel
# version defines it. Nothing is written into the kernel tree: all output goes under $(OUTPUT).

KVMFPU_OUT := $(OUTPUT)/kvmfpu

# Guest code must not depend on the compiler avoiding SIMD before XCR0 allows it: with
# -mgeneral-regs-only the compiler cannot emit any x87/SSE/AVX instruction in guest_code/, so
# the only FPU accesses there are the explicit asm of the fill/save routines.
KVMFPU_CFLAGS := -I$(KVMFPU_SRC)/lib -I$(KVMFPU_SRC)/guest_code -MD -MP \
	-Wno-declaration-after-statement
KVMFPU_GUEST_CFLAGS := -mgeneral-regs-only

KVMFPU_LIB_OBJS := $(patsubst $(KVMFPU_SRC)/%.c,$(KVMFPU_OUT)/%.o, \
	$(wildcard $(KVMFPU_SRC)/lib/*.c) $(wildcard $(KVMFPU_SRC)/guest_code/*.c))
KVMFPU_PROGS := $(patsubst $(KVMFPU_SRC)/selftests/%.c,$(KVMFPU_OUT)/%, \
	$(wildcard $(KVMFPU_SRC)/selftests/*.c))
KVMFPU_BENCH_PROGS := $(patsubst $(KVMFPU_SRC)/bench/%.c,$(KVMFPU_OUT)/%, \
	$(wildcard $(KVMFPU_SRC)/bench/*.c))
KVMFPU_UNIT_PROGS := $(patsubst $(KVMFPU_SRC)/tests/unit/%.c,$(KVMFPU_OUT)/%, \
	$(wildcard $(KVMFPU_SRC)/tests/unit/*.c))
# Harness-layer programs for tests/cli (no KVM): not tests themselves, hence no _test suffix.
KVMFPU_VERDICT_PROGS := $(patsubst $(KVMFPU_SRC)/tests/verdicts/%.c,$(KVMFPU_OUT)/%, \
	$(wildcard $(KVMFPU_SRC)/tests/verdicts/*.c))

$(shell mkdir -p $(KVMFPU_OUT)/lib $(KVMFPU_OUT)/guest_code $(KVMFPU_OUT)/selftests \
	$(KVMFPU_OUT)/bench $(KVMFPU_OUT)/tests/unit $(KVMFPU_OUT)/tests/verdicts)

$(KVMFPU_OUT)/lib/%.o: $(KVMFPU_SRC)/lib/%.c
	$(CC) $(CFLAGS) $(KVMFPU_CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@

$(KVMFPU_OUT)/guest_code/%.o: $(KVMFPU_SRC)/guest_code/%.c
	$(CC) $(CFLAGS) $(KVMFPU_CFLAGS) $(KVMFPU_GUEST_CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) \
		-c $< -o $@

$(KVMFPU_OUT)/selftests/%.o: $(KVMFPU_SRC)/selftests/%.c
	$(CC) $(CFLAGS) $(KVMFPU_CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@

$(KVMFPU_OUT)/bench/%.o: $(KVMFPU_SRC)/bench/%.c
	$(CC) $(CFLAGS) $(KVMFPU_CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@

$(KVMFPU_OUT)/tests/unit/%.o: $(KVMFPU_SRC)/tests/unit/%.c
	$(CC) $(CFLAGS) $(KVMFPU_CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@

$(KVMFPU_OUT)/tests/verdicts/%.o: $(KVMFPU_SRC)/tests/verdicts/%.c
	$(CC) $(CFLAGS) $(KVMFPU_CFLAGS) $(CPPFLAGS) $(TARGET_ARCH) -c $< -o $@

$(KVMFPU_PROGS): $(KVMFPU_OUT)/%: $(KVMFPU_OUT)/selftests/%.o $(KVMFPU_LIB_OBJS) $(LIBKVM_OBJS)
	$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH) $< $(KVMFPU_LIB_OBJS) \
		$(LIBKVM_OBJS) $(LDLIBS) -o $@

$(KVMFPU_BENCH_PROGS): $(KVMFPU_OUT)/%: $(KVMFPU_OUT)/bench/%.o $(KVMFPU_LIB_OBJS) $(LIBKVM_OBJS)
	$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH) $< $(KVMFPU_LIB_OBJS) \
		$(LIBKVM_OBJS) $(LDLIBS) -o $@

$(KVMFPU_UNIT_PROGS): $(KVMFPU_OUT)/%: $(KVMFPU_OUT)/tests/unit/%.o $(KVMFPU_LIB_OBJS) \
		$(LIBKVM_OBJS)
	$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH) $< $(KVMFPU_LIB_OBJS) \
		$(LIBKVM_OBJS) $(LDLIBS) -o $@

$(KVMFPU_VERDICT_PROGS): $(KVMFPU_OUT)/%: $(KVMFPU_OUT)/tests/verdicts/%.o $(KVMFPU_LIB_OBJS) \
		$(LIBKVM_OBJS)
	$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) $(TARGET_ARCH) $< $(KVMFPU_LIB_OBJS) \
		$(LIBKVM_OBJS) $(LDLIBS) -o $@

-include $(wildcard $(KVMFPU_OUT)/*/*.d $(KVMFPU_OUT)/*/*/*.d)

.PHONY: kvmfpu-all
kvmfpu-all: $(KVMFPU_PROGS) $(KVMFPU_BENCH_PROGS) $(KVMFPU_UNIT_PROGS) $(KVMFPU_VERDICT_PROGS)
