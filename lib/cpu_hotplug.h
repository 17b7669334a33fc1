/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host CPU offline/online through /sys/devices/system/cpu/cpuN/online, for the tests that
 * check the kernel's per-CPU FPU state after a CPU comes back (fpu_fpregs_owner_ctx,
 * xfd_state: CVE-2024-35801). It changes the host: only with the program's --allow-hotplug
 * or in a lab (KVMFPU_LAB set).
 *
 * The CPU a test has offline is recorded in memory shared by the main process, the forked
 * test process and a guard process, so that it is put back online whichever way the test
 * ends: by the test, at exit() of the test process (kvmfpu_fail(), kvmfpu_error()), or by the
 * guard that cpu_hotplug_pick() starts, which waits for the test process to be gone however
 * it died (its timeout, a SIGTERM of the main process) and then onlines the recorded CPU.
 */
#ifndef KVMFPU_CPU_HOTPLUG_H
#define KVMFPU_CPU_HOTPLUG_H

#include <stdbool.h>
#include <stddef.h>

/* May this program offline a CPU? @allow_opt: its --allow-hotplug. Else @why says how. */
bool cpu_hotplug_allowed(bool allow_opt, char *why, size_t len);

/*
 * An online CPU other than @not_cpu that this process may offline: it has an online file
 * (not so without CONFIG_HOTPLUG_CPU, nor for the boot CPU since 6.5) that it can write; it
 * starts the guard. Call it before starting threads. Else -1 with the reason in @why;
 * kvmfpu_error() if the record could not be mapped or the guard not started.
 */
int cpu_hotplug_pick(int not_cpu, char *why, size_t len);

/* Offline @cpu (recorded first) or online it (the record cleared): 0, or the errno. */
int cpu_hotplug_offline(int cpu);
int cpu_hotplug_online(int cpu);

/* Online the recorded CPU, if any (also run at exit); a failure is said on stderr. */
void cpu_hotplug_restore(void);

#endif /* KVMFPU_CPU_HOTPLUG_H */
