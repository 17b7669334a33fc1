// SPDX-License-Identifier: GPL-2.0
/*
 * kvmfpu_irq_fpu: a kernel-mode FPU user in hard interrupt context, for
 * kvmfpu_swap_stress_test's irq_fpu stimulus (KNOWLEDGE 2.13).
 *
 * Kernel code may use the FPU in an interrupt when irq_fpu_usable() says so:
 * kernel_fpu_begin() then saves the interrupted task's registers into its
 * current fpstate, which inside KVM_RUN is the vCPU's guest fpstate
 * (fpu_swap_kvm_fpstate()), sets TIF_NEED_FPU_LOAD, and KVM reloads the
 * registers before the next VM entry (switch_fpu_return() in
 * vcpu_enter_guest()). No in-tree user does this on demand, and in a lab
 * none does at all, so this module does it: a per-CPU hrtimer in hard
 * interrupt context that takes the FPU and overwrites XMM0-15 (and, through
 * kernel_fpu_begin(), the x87 state and MXCSR). Whatever it interrupts must
 * get its own registers back.
 *
 * It counts what it interrupted, so that the test passes only when the
 * stimulus reached a vCPU thread whose guest registers were live:
 *   uses    FPU sections run in hard interrupt context
 *   refused interrupts where irq_fpu_usable() said no
 *   live    uses that interrupted a user task whose registers were live
 *           (!PF_KTHREAD, !TIF_NEED_FPU_LOAD: kernel_fpu_begin() must save them)
 *   guest   of those, the ones whose live registers were a guest's
 *           (fpstate->is_guest: inside KVM_RUN, after fpu_swap_kvm_fpstate())
 *
 * /sys/module/kvmfpu_irq_fpu/parameters/period_us starts (a period in
 * microseconds) and stops (0) the timers; the counters are read-only
 * parameters. Loaded idle: nothing runs until a period is written. A CPU that
 * goes offline hands its timer to another CPU (hrtimers_cpu_dying()); it is
 * started on every online CPU again the next time a period is written.
 */
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/smp.h>
#include <linux/version.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>

struct irq_fpu_cpu {
	struct hrtimer timer;
	unsigned long uses, refused, live, guest;
};

static DEFINE_PER_CPU(struct irq_fpu_cpu, irq_fpu_cpu);
static DEFINE_MUTEX(irq_fpu_lock);
static unsigned int period_us;		/* 0: stopped */
static ktime_t period;
static bool irq_fpu_ready;		/* the timers are initialized (module_init ran) */

/* The interrupted task's FPU: x86_task_fpu() since 6.16, embedded in thread_struct before. */
static struct fpu *irq_fpu_task_fpu(struct task_struct *task)
{
#if defined(x86_task_fpu) || LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0)
	return x86_task_fpu(task);
#else
	return &task->thread.fpu;
#endif
}

/* Overwrite every XMM register: the interrupted context must not see this. */
static void irq_fpu_clobber(void)
{
	asm volatile("pcmpeqd %%xmm0, %%xmm0\n\t"
		     "pcmpeqd %%xmm1, %%xmm1\n\t"
		     "pcmpeqd %%xmm2, %%xmm2\n\t"
		     "pcmpeqd %%xmm3, %%xmm3\n\t"
		     "pcmpeqd %%xmm4, %%xmm4\n\t"
		     "pcmpeqd %%xmm5, %%xmm5\n\t"
		     "pcmpeqd %%xmm6, %%xmm6\n\t"
		     "pcmpeqd %%xmm7, %%xmm7\n\t"
		     "pcmpeqd %%xmm8, %%xmm8\n\t"
		     "pcmpeqd %%xmm9, %%xmm9\n\t"
		     "pcmpeqd %%xmm10, %%xmm10\n\t"
		     "pcmpeqd %%xmm11, %%xmm11\n\t"
		     "pcmpeqd %%xmm12, %%xmm12\n\t"
		     "pcmpeqd %%xmm13, %%xmm13\n\t"
		     "pcmpeqd %%xmm14, %%xmm14\n\t"
		     "pcmpeqd %%xmm15, %%xmm15" : : : "memory");
}

static enum hrtimer_restart irq_fpu_fire(struct hrtimer *t)
{
	struct irq_fpu_cpu *c = this_cpu_ptr(&irq_fpu_cpu);
	bool live;

	if (!READ_ONCE(period_us))
		return HRTIMER_NORESTART;
	/*
	 * irq_fpu_usable(): not inside another kernel FPU section, and in hard
	 * interrupt context only if softirqs were enabled, i.e. the interrupt did
	 * not hit an fpregs_lock()'ed region such as fpu_swap_kvm_fpstate().
	 */
	if (!irq_fpu_usable()) {
		c->refused++;
	} else {
		live = !(current->flags & PF_KTHREAD) && !test_thread_flag(TIF_NEED_FPU_LOAD);
		if (live) {
			c->live++;
			if (irq_fpu_task_fpu(current)->fpstate->is_guest)
				c->guest++;
		}
		kernel_fpu_begin();
		irq_fpu_clobber();
		kernel_fpu_end();
		c->uses++;
	}
	hrtimer_forward_now(t, period);
	return HRTIMER_RESTART;
}

/* On each CPU, from the IPI: the timer is pinned to the CPU that starts it. */
static void irq_fpu_start_cpu(void *unused)
{
	struct irq_fpu_cpu *c = this_cpu_ptr(&irq_fpu_cpu);

	hrtimer_start(&c->timer, period, HRTIMER_MODE_REL_PINNED_HARD);
}

static void irq_fpu_stop(void)
{
	int cpu;

	WRITE_ONCE(period_us, 0);
	for_each_possible_cpu(cpu)
		hrtimer_cancel(&per_cpu(irq_fpu_cpu, cpu).timer);
}

static int period_set(const char *val, const struct kernel_param *kp)
{
	unsigned int us;
	int ret;

	ret = kstrtouint(val, 0, &us);
	if (ret)
		return ret;
	if (us && us < 10)
		return -EINVAL;		/* an interrupt storm, not a stimulus */
	mutex_lock(&irq_fpu_lock);
	if (irq_fpu_ready)
		irq_fpu_stop();
	period = ns_to_ktime((u64)us * NSEC_PER_USEC);
	WRITE_ONCE(period_us, us);
	/* Given at load time (insmod ... period_us=N), module_init starts the timers. */
	if (us && irq_fpu_ready)
		on_each_cpu(irq_fpu_start_cpu, NULL, 1);
	mutex_unlock(&irq_fpu_lock);
	return 0;
}

static const struct kernel_param_ops period_ops = {
	.set = period_set,
	.get = param_get_uint,
};
module_param_cb(period_us, &period_ops, &period_us, 0644);
MODULE_PARM_DESC(period_us, "timer period in microseconds on every CPU (0: stopped)");

/* The sum over CPUs of the counter at offset @kp->arg. */
static int count_get(char *buf, const struct kernel_param *kp)
{
	size_t off = (size_t)kp->arg;
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += READ_ONCE(*(unsigned long *)((char *)per_cpu_ptr(&irq_fpu_cpu, cpu) + off));
	return sysfs_emit(buf, "%lu\n", sum);
}

static const struct kernel_param_ops count_ops = {
	.get = count_get,
};

#define IRQ_FPU_COUNT(name, desc)						\
	module_param_cb(name, &count_ops,					\
			(void *)offsetof(struct irq_fpu_cpu, name), 0444);	\
	MODULE_PARM_DESC(name, desc)

IRQ_FPU_COUNT(uses, "FPU sections run in hard interrupt context");
IRQ_FPU_COUNT(refused, "interrupts where irq_fpu_usable() refused the FPU");
IRQ_FPU_COUNT(live, "uses that interrupted a user task with live FPU registers");
IRQ_FPU_COUNT(guest, "of those, uses whose live registers were a KVM guest's");

static int __init irq_fpu_init(void)
{
	int cpu;

	for_each_possible_cpu(cpu)
		hrtimer_init(&per_cpu(irq_fpu_cpu, cpu).timer, CLOCK_MONOTONIC,
			     HRTIMER_MODE_REL_PINNED_HARD);
	for_each_possible_cpu(cpu)
		per_cpu(irq_fpu_cpu, cpu).timer.function = irq_fpu_fire;
	mutex_lock(&irq_fpu_lock);
	irq_fpu_ready = true;
	if (period_us)
		on_each_cpu(irq_fpu_start_cpu, NULL, 1);
	mutex_unlock(&irq_fpu_lock);
	return 0;
}

static void __exit irq_fpu_exit(void)
{
	mutex_lock(&irq_fpu_lock);
	irq_fpu_stop();
	mutex_unlock(&irq_fpu_lock);
}

module_init(irq_fpu_init);
module_exit(irq_fpu_exit);
MODULE_DESCRIPTION("kvmfpu: kernel-mode FPU use in hard interrupt context, on demand");
MODULE_LICENSE("GPL");
