/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the running kernel can do for a stress stimulus or an oracle, read from /proc and
 * /boot: which driver serves a crypto algorithm (is the kernel's SIMD code what AF_ALG runs?)
 * and whether a Kconfig option is set (are the kernel's FPU assertions compiled in?). The
 * parsers are pure, for unit tests on canned text.
 */
#ifndef KVMFPU_KERNEL_ENV_H
#define KVMFPU_KERNEL_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The driver the crypto API selects for @alg in @proc_crypto (the text of /proc/crypto): of
 * the non-internal entries named @alg whose self-test passed, the one of highest priority
 * (crypto_alg_lookup() picks the same). Copied into @driver ("" when there is none); returns
 * true only when it runs x86's SIMD code: one of the SIMD drivers (-ssse3, -avx, -avx2,
 * -avx512, -ni: the glue code in arch/x86/crypto runs them between kernel_fpu_begin() and
 * kernel_fpu_end()), or, on kernels whose crypto API wraps the library ("sha256-lib"), the
 * library when @config (the kernel's .config, may be NULL) has CONFIG_CRYPTO_LIB_<ALG>_ARCH
 * (arch/x86/lib/crypto then uses SSSE3/AVX2/SHA-NI code, given an SSSE3 CPU). The generic C
 * driver, or any driver not known to use the FPU, is false.
 */
bool kernel_env_crypto_simd_driver(const char *proc_crypto, const char *alg, const char *config,
				   char *driver, size_t len);

enum kconfig_value {
	KCONFIG_UNKNOWN,	/* no configuration to read */
	KCONFIG_NOT_SET,
	KCONFIG_SET,		/* =y or =m */
};

/* @option ("CONFIG_X86_DEBUG_FPU") in @config (a .config text); NULL @config is unknown. */
enum kconfig_value kernel_env_kconfig_lookup(const char *config, const char *option);

/*
 * The running kernel's configuration: /proc/config.gz (through zcat), else
 * /boot/config-$(uname -r). Returns malloc'ed text and names the source in @from, or NULL
 * with @from naming what was looked for.
 */
char *kernel_env_kconfig_read(char *from, size_t len);

/*
 * The kernel's taint mask (/proc/sys/kernel/tainted); bit 9 (TAINT_WARN, 'W') is set by any
 * WARN: a cheap WARN detector. Returns false if it cannot be read.
 */
#define KERNEL_ENV_TAINT_WARN	(1ull << 9)
bool kernel_env_taint(uint64_t *taint);

#endif /* KVMFPU_KERNEL_ENV_H */
