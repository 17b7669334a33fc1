// SPDX-License-Identifier: GPL-2.0
/*
 * The running kernel's crypto drivers and configuration, as the stress test needs them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "kernel_env.h"

/* The value of "@key : value" on the line at @line, up to the line's end. */
static bool field(const char *line, const char *key, char *val, size_t len)
{
	size_t n = strlen(key), v;

	if (strncmp(line, key, n) || (line[n] != ' ' && line[n] != ':'))
		return false;
	line = strchr(line, ':');
	if (!line)
		return false;
	line += 1 + strspn(line + 1, " \t");
	v = strcspn(line, "\n");
	if (v >= len)
		v = len - 1;
	memcpy(val, line, v);
	val[v] = 0;
	return true;
}

struct crypto_entry {
	char name[64], driver[64], selftest[64], internal[64];
	long priority;
};

static bool entry_selectable(const struct crypto_entry *e, const char *alg)
{
	return !strcmp(e->name, alg) && strcmp(e->internal, "yes") &&
	       (!e->selftest[0] || !strcmp(e->selftest, "passed"));
}

static bool driver_is_simd(const char *driver)
{
	static const char *const simd[] = { "-ssse3", "-avx", "-avx2", "-avx512", "-ni" };
	size_t n = strlen(driver), s;
	unsigned int i;

	for (i = 0; i < sizeof(simd) / sizeof(simd[0]); i++) {
		s = strlen(simd[i]);
		if (n > s && !strcmp(driver + n - s, simd[i]))
			return true;
	}
	return false;
}

/* "<alg>-lib" with CONFIG_CRYPTO_LIB_<ALG>_ARCH set. */
static bool driver_is_arch_lib(const char *driver, const char *alg, const char *config)
{
	size_t n = strlen(alg), i;
	char option[80];

	if (strncmp(driver, alg, n) || strcmp(driver + n, "-lib"))
		return false;
	snprintf(option, sizeof(option), "CONFIG_CRYPTO_LIB_%s_ARCH", alg);
	for (i = 0; option[i]; i++)
		if (option[i] >= 'a' && option[i] <= 'z')
			option[i] -= 'a' - 'A';
	return kernel_env_kconfig_lookup(config, option) == KCONFIG_SET;
}

bool kernel_env_crypto_simd_driver(const char *proc_crypto, const char *alg, const char *config,
				   char *driver, size_t len)
{
	struct crypto_entry e = { 0 }, best = { .priority = -1 };
	const char *line = proc_crypto;
	char val[64];
	bool more = true;

	/* Entries are blocks of "key : value" lines separated by an empty line. */
	while (more) {
		more = *line;
		if (!more || *line == '\n') {
			if (entry_selectable(&e, alg) && e.priority > best.priority)
				best = e;
			memset(&e, 0, sizeof(e));
		} else if (field(line, "name", val, sizeof(val))) {
			snprintf(e.name, sizeof(e.name), "%s", val);
		} else if (field(line, "driver", val, sizeof(val))) {
			snprintf(e.driver, sizeof(e.driver), "%s", val);
		} else if (field(line, "selftest", val, sizeof(val))) {
			snprintf(e.selftest, sizeof(e.selftest), "%s", val);
		} else if (field(line, "internal", val, sizeof(val))) {
			snprintf(e.internal, sizeof(e.internal), "%s", val);
		} else if (field(line, "priority", val, sizeof(val))) {
			e.priority = strtol(val, NULL, 10);
		}
		line += strcspn(line, "\n");
		line += *line == '\n';
	}
	snprintf(driver, len, "%s", best.priority >= 0 ? best.driver : "");
	return best.priority >= 0 && (driver_is_simd(best.driver) ||
				      driver_is_arch_lib(best.driver, alg, config));
}

enum kconfig_value kernel_env_kconfig_lookup(const char *config, const char *option)
{
	size_t n = strlen(option);
	const char *line;

	if (!config)
		return KCONFIG_UNKNOWN;
	for (line = config; *line; line += strcspn(line, "\n"), line += *line == '\n') {
		if (!strncmp(line, option, n) && line[n] == '=')
			return line[n + 1] == 'y' || line[n + 1] == 'm' ? KCONFIG_SET :
			       KCONFIG_NOT_SET;
	}
	return KCONFIG_NOT_SET;	/* "# CONFIG_X is not set", or not there at all */
}

static char *read_stream(FILE *f)
{
	size_t size = 0, cap = 1 << 16, n;
	char *buf = malloc(cap + 1), *more;

	while (buf && (n = fread(buf + size, 1, cap - size, f)) > 0) {
		size += n;
		if (size == cap) {
			cap *= 2;
			more = realloc(buf, cap + 1);
			if (!more)
				free(buf);
			buf = more;
		}
	}
	if (buf)
		buf[size] = 0;
	return buf && size ? buf : (free(buf), NULL);
}

char *kernel_env_kconfig_read(char *from, size_t len)
{
	char path[300];
	struct utsname u;
	char *text = NULL;
	FILE *f;

	f = fopen("/proc/config.gz", "r");
	if (f) {
		fclose(f);
		f = popen("zcat /proc/config.gz 2>/dev/null", "r");
		if (f) {
			text = read_stream(f);
			pclose(f);
		}
		if (text) {
			snprintf(from, len, "/proc/config.gz");
			return text;
		}
	}
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(path, sizeof(path), "/boot/config-%s", u.release);
	f = fopen(path, "r");
	if (f) {
		text = read_stream(f);
		fclose(f);
	}
	if (text)
		snprintf(from, len, "%s", path);
	else
		snprintf(from, len, "neither /proc/config.gz nor %s is readable", path);
	return text;
}

bool kernel_env_taint(uint64_t *taint)
{
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");
	unsigned long long t;
	bool ok;

	if (!f)
		return false;
	ok = fscanf(f, "%llu", &t) == 1;
	fclose(f);
	*taint = t;
	return ok;
}
