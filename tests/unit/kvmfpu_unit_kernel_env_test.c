// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_unit_kernel_env_test: the rules the stress test uses to decide whether a stimulus or
 * an oracle is there, on canned /proc/crypto and .config text.
 *
 * The stress test's kernel_fpu part passes only when the kernel really ran SIMD code for it:
 * AF_ALG's sha256 must be served by one of x86's SIMD drivers, not the generic C one (which a
 * kernel without the sha256_ssse3 module selects), and not one that failed its self-test. Its
 * kernel_warn part needs CONFIG_X86_DEBUG_FPU (the kernel's FPU assertions), which must read as
 * set only when the configuration says so, and as unknown when there is none. No /dev/kvm
 * needed.
 */
#include <string.h>

#include "kselftest_harness.h"

#include "kernel_env.h"

/* As a 6.12 kernel with sha256_ssse3 loaded prints it (fields abridged). */
static const char crypto_simd[] =
	"name         : sha256\n"
	"driver       : sha256-generic\n"
	"module       : kernel\n"
	"priority     : 100\n"
	"selftest     : passed\n"
	"internal     : no\n"
	"type         : shash\n"
	"\n"
	"name         : sha256\n"
	"driver       : sha256-avx2\n"
	"module       : sha256_ssse3\n"
	"priority     : 170\n"
	"selftest     : passed\n"
	"internal     : no\n"
	"type         : shash\n"
	"\n"
	"name         : sha224\n"
	"driver       : sha224-ni\n"
	"module       : sha256_ssse3\n"
	"priority     : 250\n"
	"selftest     : passed\n"
	"internal     : no\n"
	"type         : shash\n"
	"\n"
	"name         : sha256\n"
	"driver       : sha256-avx\n"
	"module       : sha256_ssse3\n"
	"priority     : 160\n"
	"selftest     : passed\n"
	"internal     : no\n"
	"type         : shash\n";

/* The generic driver only: the module is not there. */
static const char crypto_generic[] =
	"name         : sha256\n"
	"driver       : sha256-generic\n"
	"module       : kernel\n"
	"priority     : 100\n"
	"selftest     : passed\n"
	"internal     : no\n"
	"type         : shash\n";

/* The SIMD driver has the highest priority but failed its self-test, or is internal. */
static const char crypto_unusable[] =
	"name         : sha256\n"
	"driver       : sha256-ni\n"
	"priority     : 250\n"
	"selftest     : unknown\n"
	"internal     : no\n"
	"\n"
	"name         : sha256\n"
	"driver       : __sha256-avx512\n"
	"priority     : 400\n"
	"selftest     : passed\n"
	"internal     : yes\n"
	"\n"
	"name         : sha256\n"
	"driver       : sha256-generic\n"
	"priority     : 100\n"
	"selftest     : passed\n"
	"internal     : no\n";

/*
 * A later kernel's (6.18) crypto API wrapping the library: SIMD code only when the library is
 * arch-optimized, which /proc/crypto does not say; the configuration does.
 */
static const char crypto_unknown[] =
	"name         : sha256\n"
	"driver       : sha256-lib\n"
	"priority     : 300\n"
	"selftest     : passed\n"
	"internal     : no\n";

/* kernel_env_crypto_simd_driver() into driver[]. */
#define SIMD_DRIVER(text, alg, config)	\
	kernel_env_crypto_simd_driver(text, alg, config, driver, sizeof(driver))

TEST(crypto_selected_driver)
{
	char driver[64];

	EXPECT_TRUE(SIMD_DRIVER(crypto_simd, "sha256", NULL));
	EXPECT_STREQ("sha256-avx2", driver);
	EXPECT_FALSE(SIMD_DRIVER(crypto_generic, "sha256", NULL));
	EXPECT_STREQ("sha256-generic", driver);
	EXPECT_FALSE(SIMD_DRIVER(crypto_unusable, "sha256", NULL));
	EXPECT_STREQ("sha256-generic", driver);
	EXPECT_FALSE(SIMD_DRIVER(crypto_unknown, "sha256", NULL));
	EXPECT_STREQ("sha256-lib", driver);
	EXPECT_FALSE(SIMD_DRIVER(crypto_unknown, "sha256", "CONFIG_CRYPTO_LIB_SHA256=y\n"
				 "# CONFIG_CRYPTO_LIB_SHA256_ARCH is not set\n"));
	EXPECT_TRUE(SIMD_DRIVER(crypto_unknown, "sha256", "CONFIG_CRYPTO_LIB_SHA256=y\n"
				"CONFIG_CRYPTO_LIB_SHA256_ARCH=y\n"));
	EXPECT_STREQ("sha256-lib", driver);
	/* The option says nothing about another algorithm's driver. */
	EXPECT_FALSE(SIMD_DRIVER(crypto_generic, "sha256", "CONFIG_CRYPTO_LIB_SHA256_ARCH=y\n"));
	EXPECT_FALSE(SIMD_DRIVER(crypto_simd, "sha512", NULL));
	EXPECT_STREQ("", driver);
	EXPECT_FALSE(SIMD_DRIVER("", "sha256", NULL));
	EXPECT_STREQ("", driver);
}

TEST(kconfig)
{
	static const char config[] =
		"#\n# Automatically generated file; DO NOT EDIT.\n#\n"
		"CONFIG_X86_DEBUG_FPU_EXTRA=y\n"
		"# CONFIG_X86_DEBUG_FPU is not set\n"
		"CONFIG_KVM=m\n"
		"CONFIG_KVM_AMD=y\n"
		"CONFIG_NR_CPUS=64";

	EXPECT_EQ(KCONFIG_NOT_SET, kernel_env_kconfig_lookup(config, "CONFIG_X86_DEBUG_FPU"));
	EXPECT_EQ(KCONFIG_SET, kernel_env_kconfig_lookup(config, "CONFIG_KVM"));
	EXPECT_EQ(KCONFIG_SET, kernel_env_kconfig_lookup(config, "CONFIG_KVM_AMD"));
	EXPECT_EQ(KCONFIG_NOT_SET, kernel_env_kconfig_lookup(config, "CONFIG_KVM_INTEL"));
	EXPECT_EQ(KCONFIG_NOT_SET, kernel_env_kconfig_lookup(config, "CONFIG_NR_CPUS"));
	EXPECT_EQ(KCONFIG_SET, kernel_env_kconfig_lookup("CONFIG_X86_DEBUG_FPU=y\n",
							 "CONFIG_X86_DEBUG_FPU"));
	EXPECT_EQ(KCONFIG_UNKNOWN, kernel_env_kconfig_lookup(NULL, "CONFIG_X86_DEBUG_FPU"));
}

TEST_HARNESS_MAIN
