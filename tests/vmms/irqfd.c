/*
 * A VMM that sends its VM an interrupt through an irqfd (GH_FN_IRQFD, the
 * Linux series' v14) and hears its writes through ioeventfds
 * (GH_FN_IOEVENTFD). One line per step, "irqfd: NAME errno N" or
 * "irqfd: NAME = N":
 * 1. nonsense to GH_VM_ADD_FUNCTION for an irqfd (an argument of the wrong
 *    size, at a bad address, a reserved flag, no such fd, an fd that is no
 *    eventfd), then an eventfd bound to the doorbell of label 0 (level), one
 *    to label 1's (level: that doorbell's tree gives the owner the right to
 *    clear it), a second on label 0 (refused), one on label 9 (the VM has no
 *    such doorbell) and the removal of one never added;
 * 1b. ioeventfds (GH_FN_IOEVENTFD; non-blocking eventfds, names "io_..."):
 *    nonsense (wrong size, a reserved flag, length 3, length 0 with
 *    DATAMATCH, no such fd, no eventfd), then 0x7100 4 bytes DATAMATCH 0x55,
 *    0x7100 1 byte DATAMATCH 1, two that collide with them (EEXIST: the
 *    same value, and length 0 there), 0x7100 4 bytes of another value
 *    (taken and removed), 0x7200 without DATAMATCH, a range that wraps
 *    (taken and removed), 0x7300 added and removed, removals that match nothing, and as many
 *    more as the module takes ("io_cap", then the refusal), all removed;
 *    the guest's accesses that reach the VMM say "io_read_ADDR_LEN" or
 *    "io_write_ADDR_LEN = VALUE" (reads are answered 0); after the run each
 *    eventfd's count ("io_count_*"; errno 11: never signalled);
 * 2. the VM (/vm/image at the start of 2 MiB at 0x80000000, /vm/dtb a page
 *    after it, 64 KiB of room) runs: when its guest
 *    (tests/guests/secondary/doorbell.S) stores to 0x7000 (ready, about to
 *    wait in WFI), a child process signals label 0's eventfd 0.5 s later,
 *    while the parent is back in GH_VCPU_RUN; the guest's store to 0x7008
 *    is the interrupt ID it took ("intid"); its end is "exit_type";
 * 3. label 9's eventfd is signalled (no doorbell: the module says so and
 *    rings nothing), removed, and signalled again; then everything closes.
 * Built with the project's toolchain and carried into a boot by the tests.
 */
#include "gunyah_uapi.h"
#include "nolibc.h" /* _start, sys6 */

#define SYS_eventfd2 19
#define SYS_ioctl 29
#define SYS_openat 56
#define SYS_close 57
#define SYS_read 63
#define SYS_write 64
#define SYS_exit_group 94
#define SYS_nanosleep 101
#define SYS_clone 220
#define SYS_mmap 222
#define SYS_wait4 260
#define AT_FDCWD (-100)
#define O_RDWR 02
#define PROT_RW 3
#define MAP_SHARED 1
#define MAP_PRIVATE_ANON 0x22
#define SIGCHLD 17
#define PAGE 4096UL
#define MEM (2UL << 20)
#define BASE 0x80000000UL
#define DT_ROOM 0x10000UL
#define EFD_NONBLOCK 04000
#define ADD GH_VM_ADD_FUNCTION
#define REMOVE GH_VM_REMOVE_FUNCTION
#define DM GH_IOEVENTFD_FLAGS_DATAMATCH
#define IOSZ sizeof(struct gh_fn_ioeventfd_arg)

#define SAY_PREFIX "irqfd: "
#include "say.h" /* say(name, ret) */

static long io(long fd, unsigned long cmd, const void *arg)
{
	return sys6(SYS_ioctl, fd, (long)cmd, (long)arg, 0, 0, 0);
}

static long irqfd(long vm, unsigned long cmd, unsigned fd, unsigned label, unsigned flags,
		  unsigned size, const void *at)
{
	struct gh_fn_irqfd_arg a = { fd, label, flags, 0 };
	struct gh_fn_desc d = { GH_FN_IRQFD, size, (unsigned long)(at ? at : &a) };

	return io(vm, cmd, &d);
}

static long ioeventfd(long vm, unsigned long cmd, unsigned long addr, unsigned len,
		      unsigned long datamatch, long fd, unsigned flags, unsigned size)
{
	struct gh_fn_ioeventfd_arg a = { datamatch, addr, len, (int)fd, flags, 0 };
	struct gh_fn_desc d = { GH_FN_IOEVENTFD, size, (unsigned long)&a };

	return io(vm, cmd, &d);
}

/* "io_read_7100_4" or "io_write_7100_4 = value": an access the guest made
 * where the VMM is asked, not an ioeventfd */
static void say_access(const struct gh_vcpu_run *run)
{
	const char *kind = run->mmio.is_write ? "io_write_" : "io_read_";
	unsigned long addr = run->mmio.phys_addr, v = 0, n = 0;
	char name[40];
	int shift = 60;

	while (*kind)
		name[n++] = *kind++;
	while (shift > 0 && !(addr >> shift))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		name[n++] = "0123456789abcdef"[(addr >> shift) & 15];
	name[n++] = '_';
	name[n++] = (char)('0' + run->mmio.len % 10);
	name[n] = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | run->mmio.data[i];
	say(name, run->mmio.is_write ? (long)v : 0);
}

static long count_of(long fd)
{
	unsigned long n = 0;
	long got = sys6(SYS_read, fd, (long)&n, sizeof(n), 0, 0, 0);

	return got < 0 ? got : (long)n;
}

static long load(const char *path, unsigned char *to, unsigned long room)
{
	long fd = sys6(SYS_openat, AT_FDCWD, (long)path, 0, 0, 0, 0), n;

	if (fd < 0)
		return fd;
	n = sys6(SYS_read, fd, (long)to, (long)room, 0, 0, 0);
	sys6(SYS_close, fd, 0, 0, 0, 0, 0);
	return n;
}

static void signal_fd(long fd)
{
	unsigned long one = 1;

	sys6(SYS_write, fd, (long)&one, sizeof(one), 0, 0, 0);
}

__attribute__((noreturn, used)) void entry(long *sp)
{
	long dev = sys6(SYS_openat, AT_FDCWD, (long)"/dev/gunyah", O_RDWR, 0, 0, 0), vm, vcpu;
	long bell = sys6(SYS_eventfd2, 0, 0, 0, 0, 0, 0), other = sys6(SYS_eventfd2, 0, 0, 0, 0, 0, 0);
	long clearable = sys6(SYS_eventfd2, 0, 0, 0, 0, 0, 0);
	long io4 = sys6(SYS_eventfd2, 0, EFD_NONBLOCK, 0, 0, 0, 0);
	long io1 = sys6(SYS_eventfd2, 0, EFD_NONBLOCK, 0, 0, 0, 0);
	long any = sys6(SYS_eventfd2, 0, EFD_NONBLOCK, 0, 0, 0, 0);
	long gone = sys6(SYS_eventfd2, 0, EFD_NONBLOCK, 0, 0, 0, 0);
	unsigned char *mem = (unsigned char *)sys6(SYS_mmap, 0, (long)MEM, PROT_RW,
						   MAP_PRIVATE_ANON, -1, 0);
	unsigned long m = (unsigned long)mem, dt_off;
	long image, ret, n = 0;
	struct gh_userspace_memory_region r = { 0, GH_MEM_ALLOW_READ | GH_MEM_ALLOW_WRITE |
						GH_MEM_ALLOW_EXEC, BASE, MEM, m };
	struct gh_vm_dtb_config dtb;
	struct gh_fn_vcpu_arg a = { 0 };
	struct gh_fn_desc d = { GH_FN_VCPU, sizeof(a), (unsigned long)&a };
	struct gh_vcpu_run *run;
	(void)sp;

	image = load("/vm/image", mem, MEM / 2);
	dt_off = (image + PAGE - 1) & ~(PAGE - 1);
	say("image", image < 0 ? image : 0);
	say("dtb", load("/vm/dtb", mem + dt_off, DT_ROOM) < 0 ? -2 : 0);
	vm = io(dev, GH_CREATE_VM, 0);
	say("create_vm", vm < 0 ? vm : 0);
	say("region", io(vm, GH_VM_SET_USER_MEM_REGION, &r));
	dtb.guest_phys_addr = BASE + dt_off;
	dtb.size = DT_ROOM;
	say("dtb_config", io(vm, GH_VM_SET_DTB_CONFIG, &dtb));
	vcpu = io(vm, GH_VM_ADD_FUNCTION, &d);
	say("vcpu", vcpu < 0 ? vcpu : 0);

	say("arg_size", irqfd(vm, GH_VM_ADD_FUNCTION, bell, 0, 0, 12, 0));
	say("arg_pointer", irqfd(vm, GH_VM_ADD_FUNCTION, bell, 0, 0, 16, (void *)8));
	say("reserved_flag", irqfd(vm, GH_VM_ADD_FUNCTION, bell, 0, 2, 16, 0));
	say("no_such_fd", irqfd(vm, GH_VM_ADD_FUNCTION, 0xffffffffU, 0, 0, 16, 0));
	say("not_an_eventfd", irqfd(vm, GH_VM_ADD_FUNCTION, (unsigned)dev, 0, 0, 16, 0));
	say("bind", irqfd(vm, GH_VM_ADD_FUNCTION, bell, 0, GH_IRQFD_LEVEL, 16, 0));
	say("bind_clearable", irqfd(vm, GH_VM_ADD_FUNCTION, clearable, 1, GH_IRQFD_LEVEL, 16, 0));
	say("same_label", irqfd(vm, GH_VM_ADD_FUNCTION, other, 0, 0, 16, 0));
	say("no_doorbell", irqfd(vm, GH_VM_ADD_FUNCTION, other, 9, 0, 16, 0));
	say("remove_unknown", irqfd(vm, GH_VM_REMOVE_FUNCTION, other, 5, 0, 16, 0));

	say("io_arg_size", ioeventfd(vm, ADD, 0x7100, 4, 0x55, io4, DM, 16));
	say("io_reserved_flag", ioeventfd(vm, ADD, 0x7100, 4, 0x55, io4, 2, IOSZ));
	say("io_len_3", ioeventfd(vm, ADD, 0x7100, 3, 0x55, io4, DM, IOSZ));
	say("io_len_0_datamatch", ioeventfd(vm, ADD, 0x7100, 0, 0x55, io4, DM, IOSZ));
	say("io_no_such_fd", ioeventfd(vm, ADD, 0x7100, 4, 0x55, -1, DM, IOSZ));
	say("io_not_an_eventfd", ioeventfd(vm, ADD, 0x7100, 4, 0x55, dev, DM, IOSZ));
	say("io_datamatch", ioeventfd(vm, ADD, 0x7100, 4, 0x55, io4, DM, IOSZ));
	say("io_datamatch_byte", ioeventfd(vm, ADD, 0x7100, 1, 1, io1, DM, IOSZ));
	say("io_same_value", ioeventfd(vm, ADD, 0x7100, 4, 0x55, gone, DM, IOSZ));
	say("io_other_value", ioeventfd(vm, ADD, 0x7100, 4, 0x77, gone, DM, IOSZ));
	say("io_remove_other_value", ioeventfd(vm, REMOVE, 0x7100, 4, 0x77, gone, DM, IOSZ));
	say("io_any_length_there", ioeventfd(vm, ADD, 0x7100, 0, 0, gone, 0, IOSZ));
	say("io_any", ioeventfd(vm, ADD, 0x7200, 4, 0, any, 0, IOSZ));
	say("io_wraps", ioeventfd(vm, ADD, -4UL, 8, 0, gone, 0, IOSZ));
	say("io_remove_wraps", ioeventfd(vm, REMOVE, -4UL, 8, 0, gone, 0, IOSZ));
	say("io_then_removed", ioeventfd(vm, ADD, 0x7300, 4, 0, gone, 0, IOSZ));
	say("io_remove", ioeventfd(vm, REMOVE, 0x7300, 4, 0, gone, 0, IOSZ));
	say("io_remove_unknown", ioeventfd(vm, REMOVE, 0x7400, 4, 0, gone, 0, IOSZ));
	/* 0x7200's handler as added but another datamatch: not the same bytes, it stays */
	say("io_remove_other_bytes", ioeventfd(vm, REMOVE, 0x7200, 4, 5, any, 0, IOSZ));
	for (n = 0; (ret = ioeventfd(vm, ADD, 0x10000 + 8 * n, 0, 0, gone, 0, IOSZ)) == 0; n++)
		;
	say("io_cap", n);
	say("io_over_cap", ret);
	for (ret = 0; n-- > 0;)
		ret |= ioeventfd(vm, REMOVE, 0x10000 + 8 * n, 0, 0, gone, 0, IOSZ);
	say("io_cap_removed", ret);
	n = 0;

	run = (struct gh_vcpu_run *)sys6(SYS_mmap, 0, (long)PAGE, PROT_RW, MAP_SHARED, vcpu, 0);
	for (;;) {
		ret = io(vcpu, GH_VCPU_RUN, 0);
		n++;
		if (ret < 0) {
			say("run", ret);
			break;
		}
		if (run->exit_reason == GH_VCPU_EXIT_STATUS) {
			say("exit_type", run->status.exit_info.type);
			break;
		}
		if (run->exit_reason != GH_VCPU_EXIT_MMIO) {
			say("unexpected_exit", run->exit_reason);
			break;
		}
		if (run->mmio.phys_addr >= 0x7100 && run->mmio.phys_addr < 0x7400) {
			say_access(run);
			for (int i = 0; i < 8; i++)
				run->mmio.data[i] = 0; /* a read's value */
		} else if (!run->mmio.is_write) {
			say("unexpected_read", (long)run->mmio.phys_addr);
			break;
		} else if (run->mmio.phys_addr == 0x7000) {
			say("ready", 0);
			if (sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0) == 0) {
				long ts[2] = { 0, 500000000 };

				sys6(SYS_nanosleep, (long)ts, 0, 0, 0, 0, 0);
				signal_fd(bell);
				sys6(SYS_exit_group, 0, 0, 0, 0, 0, 0);
			}
		} else if (run->mmio.phys_addr == 0x7008) {
			unsigned long v = 0;

			for (int i = 7; i >= 0; i--)
				v = v << 8 | run->mmio.data[i];
			say("intid", (long)v);
		}
	}
	say("runs", n);
	say("io_count_datamatch", count_of(io4));
	say("io_count_datamatch_byte", count_of(io1));
	say("io_count_any", count_of(any));
	say("io_count_never", count_of(gone));
	sys6(SYS_wait4, -1, 0, 0, 0, 0, 0);
	signal_fd(other);
	say("remove", irqfd(vm, GH_VM_REMOVE_FUNCTION, other, 9, 0, 16, 0));
	signal_fd(other);
	sys6(SYS_close, vcpu, 0, 0, 0, 0, 0);
	sys6(SYS_close, vm, 0, 0, 0, 0, 0);
	sys6(SYS_close, dev, 0, 0, 0, 0, 0);
	say("done", 0);
	sys6(SYS_exit_group, 0, 0, 0, 0, 0, 0);
	__builtin_unreachable();
}
