/*
 * /init of the initramfs `gunyah boot --vm` gives a Linux secondary (unless
 * the user gives their own with --vm-initrd): it says that it runs, how long
 * after its kernel started (CLOCK_BOOTTIME, the clock the kernel's own
 * uptime counts) and on how many CPUs (those its affinity allows: every CPU
 * the kernel brought up), and powers the VM off with reboot(2)'s POWER_OFF, which
 * Linux turns into PSCI SYSTEM_OFF (drivers/firmware/psci/psci.c), so the
 * VM ends as any VM that powers off does: VM_EXITED, PLATFORM_OFF.
 *
 *   gunyah-vm-init: pid 1 up S.UUUUUU s on N CPUs, powering off
 *   gunyah-vm-init: reboot failed errno N         (then it exits: the kernel panics)
 *
 * Its stdout is the kernel's /dev/console (the PL011 our VMM emulates, once
 * its driver binds). A static AArch64 Linux program with no C library, like
 * vmm.c; built by `python -m gunyah.toolchain`.
 */
#include "nolibc.h" /* _start, sys6 */

#define SYS_write 64
#define SYS_exit 93
#define SYS_clock_gettime 113
#define SYS_reboot 142
#define SYS_sched_getaffinity 123
#define CLOCK_BOOTTIME 7
/* include/uapi/linux/reboot.h */
#define LINUX_REBOOT_MAGIC1 0xfee1deadL
#define LINUX_REBOOT_MAGIC2 672274793L
#define LINUX_REBOOT_CMD_POWER_OFF 0x4321fedcL

static char text[96];
static unsigned long len;

static void put(const char *s)
{
	while (*s && len < sizeof(text) - 1)
		text[len++] = *s++;
}

static void put_decimal(unsigned long v, int width)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v || n < width);
	while (n && len < sizeof(text) - 1)
		text[len++] = digits[--n];
}

static void say(void)
{
	text[len++] = '\n';
	sys6(SYS_write, 1, (long)text, (long)len, 0, 0, 0);
	len = 0;
}

__attribute__((noreturn, used)) void entry(long *sp)
{
	struct { long sec, nsec; } t = { 0, 0 };
	unsigned long mask[16] = { 0 }, cpus = 0;
	long ret, n;

	(void)sp;
	sys6(SYS_clock_gettime, CLOCK_BOOTTIME, (long)&t, 0, 0, 0, 0);
	put("gunyah-vm-init: pid 1 up ");
	put_decimal((unsigned long)t.sec, 1);
	put(".");
	put_decimal((unsigned long)t.nsec / 1000, 6);
	n = sys6(SYS_sched_getaffinity, 0, sizeof(mask), (long)mask, 0, 0, 0);
	for (long i = 0; i < n / 8; i++)
		cpus += (unsigned long)__builtin_popcountl(mask[i]);
	put(" s on ");
	put_decimal(cpus, 1);
	put(" CPUs, powering off");
	say();
	ret = sys6(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		   LINUX_REBOOT_CMD_POWER_OFF, 0, 0, 0);
	put("gunyah-vm-init: reboot failed errno ");
	put_decimal((unsigned long)-ret, 1);
	say();
	sys6(SYS_exit, 1, 0, 0, 0, 0, 0);
	__builtin_unreachable();
}
