// SPDX-License-Identifier: GPL-2.0
/*
 * Host CPU offline/online for the hotplug tests (cpu_hotplug.h).
 */
#define _GNU_SOURCE	/* CPU_SETSIZE */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cpu_hotplug.h"
#include "report.h"

/* The CPU a test has offline, or -1; MAP_SHARED, so forked test processes share it. */
static int *offline_cpu;

static void online_path(int cpu, char *path, size_t len)
{
	snprintf(path, len, "/sys/devices/system/cpu/cpu%d/online", cpu);
}

static int write_online(int cpu, bool online)
{
	char path[64];
	int fd, err = 0;

	online_path(cpu, path, sizeof(path));
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno;
	if (write(fd, online ? "1" : "0", 1) != 1)
		err = errno ?: EIO;
	close(fd);
	return err;
}

void cpu_hotplug_restore(void)
{
	int cpu = offline_cpu ? *offline_cpu : -1, err;

	if (cpu < 0)
		return;
	err = write_online(cpu, true);
	if (err)
		fprintf(stderr, "kvmfpu: CPU %d is left offline: onlining it failed: %s "
			"(echo 1 > /sys/devices/system/cpu/cpu%d/online)\n", cpu, strerror(err),
			cpu);
	else
		*offline_cpu = -1;
}

/* Before any test process is forked, so that the record is shared with it. */
__attribute__((constructor)) static void record_init(void)
{
	void *p = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		return;		/* cpu_hotplug_pick() then says so */
	offline_cpu = p;
	*offline_cpu = -1;
	atexit(cpu_hotplug_restore);
}

/*
 * A process that outlives the test process however it ends (a runner's SIGTERM of the main
 * process makes the harness SIGKILL the test process, and no exit handler runs): it waits for
 * end of file on a pipe whose write end only the test process holds, then onlines the
 * recorded CPU. Started before the test's threads, so the child only runs plain syscalls.
 */
static int start_guard(void)
{
	int fds[2], fd;
	pid_t pid;
	char c;

	if (pipe2(fds, O_CLOEXEC))
		return errno;
	pid = fork();
	if (pid < 0)
		return errno;
	if (!pid) {
		/* Not killed with the test: no death signal, not in its process group. */
		prctl(PR_SET_PDEATHSIG, 0);
		setpgid(0, 0);
		for (fd = 3; fd < 1024; fd++)	/* nor holding its VMs */
			if (fd != fds[0])
				close(fd);
		while (read(fds[0], &c, 1) < 0 && errno == EINTR)
			;
		cpu_hotplug_restore();
		_exit(0);
	}
	close(fds[0]);	/* fds[1] stays open until the test process is gone */
	return 0;
}

bool cpu_hotplug_allowed(bool allow_opt, char *why, size_t len)
{
	const char *lab = getenv("KVMFPU_LAB");

	if (allow_opt || (lab && *lab))
		return true;
	snprintf(why, len, "CPU hotplug changes the host: pass --allow-hotplug to allow it (the "
		 "labs allow it: KVMFPU_LAB is set there)");
	return false;
}

int cpu_hotplug_pick(int not_cpu, char *why, size_t len)
{
	long cpu, nr = sysconf(_SC_NPROCESSORS_CONF);
	char path[64], c;
	bool online;
	int fd, err;

	if (!offline_cpu)
		kvmfpu_error("cannot map the record of the CPU to put back online");
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		snprintf(why, len, "one CPU online: none to offline while the vCPUs run");
		return -1;
	}
	for (cpu = 0; cpu < nr && cpu < CPU_SETSIZE; cpu++) {
		if (cpu == not_cpu)
			continue;
		online_path(cpu, path, sizeof(path));
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		online = read(fd, &c, 1) == 1 && c == '1';
		close(fd);
		if (!online)
			continue;
		if (access(path, W_OK)) {
			snprintf(why, len, "cannot write %s: %s (offlining a CPU needs root)", path,
				 strerror(errno));
			return -1;
		}
		err = start_guard();
		if (err)
			kvmfpu_error("cannot start the process that puts CPU %ld back online: %s",
				     cpu, strerror(err));
		return cpu;
	}
	snprintf(why, len, "no online CPU but CPU %d has /sys/devices/system/cpu/cpuN/online: "
		 "the kernel cannot offline one (CONFIG_HOTPLUG_CPU not set, or only the boot CPU "
		 "is left)", not_cpu);
	return -1;
}

int cpu_hotplug_offline(int cpu)
{
	int err;

	*offline_cpu = cpu;
	err = write_online(cpu, false);
	if (err)
		cpu_hotplug_restore();	/* still online, most likely: clears the record */
	return err;
}

int cpu_hotplug_online(int cpu)
{
	int err = write_online(cpu, true);

	if (!err)
		*offline_cpu = -1;
	return err;
}
