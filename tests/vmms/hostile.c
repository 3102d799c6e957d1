/*
 * A hostile VMM: nonsense to every /dev/gunyah ioctl, one line per try,
 * "hostile: NAME errno N" (or "= N" for a value), then closes everything.
 * Then it lends 2 MiB to a VM it starts (the spinning guest /vm/spin and the
 * tree /vm/dtb) and shares one page more, reads a lent page (a SIGBUS:
 * "lent_signal = 7"), the shared one, and the lent one again once the VM is
 * torn down and its parcel reclaimed; the VM has an ioeventfd and an irqfd
 * bound (an eventfd that outlives it) when it goes.
 * Built with the project's toolchain and carried into a boot by the tests.
 */
#include "gunyah_uapi.h"
#include "nolibc.h" /* _start, sys6, memset, memcpy */

#define SYS_eventfd2 19
#define SYS_ioctl 29
#define SYS_openat 56
#define SYS_close 57
#define SYS_read 63
#define SYS_rt_sigaction 134
#define SYS_write 64
#define SYS_exit 93
#define SYS_munmap 215
#define SYS_mmap 222
#define AT_FDCWD (-100)
#define O_RDWR 02
#define PROT_RW 3
#define MAP_SHARED 1
#define MAP_PRIVATE_ANON 0x22
#define PAGE 4096L
#define SIGBUS 7
#define SA_SIGINFO 4
#define UC_X0 (184 / 8)    /* arm64 struct ucontext: uc_mcontext.regs[0] */
#define UC_PC (440 / 8)    /* and uc_mcontext.pc */
#define SI_CODE (8 / 4)    /* siginfo_t.si_code, in ints */

#define SAY_PREFIX "hostile: "
#include "say.h" /* say(name, ret) */

/* probe(p): the byte at p, or -1 where reading it raised a signal. */
long probe(const volatile unsigned char *p);
__asm__(".globl probe\nprobe:\n  mov x1, x0\n  mov x0, #0\n  ldrb w0, [x1]\n  ret\n");

static long caught_signal, caught_code;

/* The signal a probe's load raised: noted, and the load skipped with -1. */
static void on_signal(int sig, void *info, void *uc)
{
	caught_signal = sig;
	caught_code = ((int *)info)[SI_CODE];
	((unsigned long *)uc)[UC_X0] = ~0UL;
	((unsigned long *)uc)[UC_PC] += 4;
}

static long io(long fd, unsigned long cmd, const void *arg)
{
	return sys6(SYS_ioctl, fd, (long)cmd, (long)arg, 0, 0, 0);
}

static long region(long vm, unsigned label, unsigned flags, unsigned long gpa, unsigned long size,
		   unsigned long uaddr)
{
	struct gh_userspace_memory_region r = { label, flags, gpa, size, uaddr };

	return io(vm, GH_VM_SET_USER_MEM_REGION, &r);
}

/* Lend memory to a VM, start it, and read what was lent and what was shared;
 * again after the VM is gone. */
static void lend(long dev)
{
	struct { unsigned long handler, flags, restorer, mask; } act = {
		(unsigned long)on_signal, SA_SIGINFO, 0, 0 };
	unsigned long size = 2UL << 20, base = 0x80000000UL;
	unsigned char *mem = (unsigned char *)sys6(SYS_mmap, 0, (long)size + PAGE, PROT_RW,
						   MAP_PRIVATE_ANON, -1, 0);
	unsigned long m = (unsigned long)mem;
	long vm, vcpu, fd, n;
	struct gh_vm_dtb_config dtb = { base + PAGE, 0x10000 };
	struct gh_fn_vcpu_arg a = { 0 };
	struct gh_fn_desc d = { GH_FN_VCPU, sizeof(a), (unsigned long)&a };
	struct gh_userspace_memory_region lent = { 0, 7, base, size, m };
	struct gh_userspace_memory_region shared = { 1, 7, base + size, PAGE, m + size };
	struct gh_fn_ioeventfd_arg iofd = { 1, 0x7100, 4, -1, GH_IOEVENTFD_FLAGS_DATAMATCH, 0 };
	struct gh_fn_desc iod = { GH_FN_IOEVENTFD, sizeof(iofd), (unsigned long)&iofd };
	struct gh_fn_irqfd_arg irqfd = { 0, 5, 0, 0 };   /* label 5: the VM has no such doorbell */
	struct gh_fn_desc irqd = { GH_FN_IRQFD, sizeof(irqfd), (unsigned long)&irqfd };
	long efd;

	sys6(SYS_rt_sigaction, SIGBUS, (long)&act, 0, 8, 0, 0);
	mem[0] = 0x00, mem[1] = 0x00, mem[2] = 0x00, mem[3] = 0x14;   /* b . */
	fd = sys6(SYS_openat, AT_FDCWD, (long)"/vm/dtb", 0, 0, 0, 0);
	n = sys6(SYS_read, fd, m + PAGE, 0x10000, 0, 0, 0);
	sys6(SYS_close, fd, 0, 0, 0, 0, 0);
	say("lend_dtb_read", n > 0 ? 0 : -22);
	mem[0x20000] = 0xa5;
	mem[size] = 0x5a;
	vm = io(dev, GH_CREATE_VM, 0);
	say("lend_region", io(vm, GH_VM_ANDROID_LEND_USER_MEM, &lent));
	say("lend_share_region", io(vm, GH_VM_SET_USER_MEM_REGION, &shared));
	say("lend_dtb", io(vm, GH_VM_SET_DTB_CONFIG, &dtb));
	vcpu = io(vm, GH_VM_ADD_FUNCTION, &d);
	say("lend_vcpu", vcpu < 0 ? vcpu : 0);
	say("lend_start", io(vm, GH_VM_START, 0));
	efd = sys6(SYS_eventfd2, 0, 0, 0, 0, 0, 0);
	iofd.fd = (int)efd;
	irqfd.fd = (unsigned)efd;
	say("lend_ioeventfd", io(vm, GH_VM_ADD_FUNCTION, &iod));
	say("lend_irqfd", io(vm, GH_VM_ADD_FUNCTION, &irqd));
	say("lent_read", probe(mem + 0x20000));
	say("lent_signal", caught_signal);
	say("lent_code", caught_code);
	say("shared_read", probe(mem + size));
	sys6(SYS_close, vcpu, 0, 0, 0, 0, 0);
	sys6(SYS_close, vm, 0, 0, 0, 0, 0);
	caught_signal = 0;
	say("reclaimed_read", probe(mem + 0x20000));
	say("reclaimed_signal", caught_signal);
	say("eventfd_after_vm", sys6(SYS_close, efd, 0, 0, 0, 0, 0));
}

__attribute__((noreturn, used)) void entry(long *sp)
{
	long dev = sys6(SYS_openat, AT_FDCWD, (long)"/dev/gunyah", O_RDWR, 0, 0, 0), vm, vcpu, ret;
	unsigned char *mem = (unsigned char *)sys6(SYS_mmap, 0, 16 * PAGE, PROT_RW, MAP_PRIVATE_ANON,
						   -1, 0);
	unsigned long m = (unsigned long)mem, base = 0x80000000UL;
	struct gh_vm_dtb_config dtb;
	struct gh_fn_vcpu_arg a = { 0 };
	struct gh_fn_desc d;
	(void)sp;

	say("open", dev < 0 ? dev : 0);
	say("create_vm_type_1", io(dev, GH_CREATE_VM + 0, (void *)1));
	say("dev_unknown_ioctl", io(dev, 0x4799, 0));
	vm = io(dev, GH_CREATE_VM, 0);
	say("create_vm", vm < 0 ? vm : 0);
	say("region_null", io(vm, GH_VM_SET_USER_MEM_REGION, 0));
	say("region_flags", region(vm, 0, 8, base, PAGE, m));
	say("region_zero", region(vm, 0, 7, base, 0, m));
	say("region_size_unaligned", region(vm, 0, 7, base, PAGE + 1, m));
	say("region_gpa_unaligned", region(vm, 0, 7, base + 0x800, PAGE, m));
	say("region_uaddr_unaligned", region(vm, 0, 7, base, PAGE, m + 1));
	say("region_overflow", region(vm, 0, 7, 0xfffffffffffff000UL, 2 * PAGE, m));
	say("region_unmapped", region(vm, 0, 7, base, PAGE, 0x1000));
	say("region_huge", region(vm, 0, 7, base, 1UL << 40, m));
	say("region", region(vm, 0, 7, base, 8 * PAGE, m));
	say("region_same_label", region(vm, 0, 7, base + 0x100000, PAGE, m + 8 * PAGE));
	say("region_overlap", region(vm, 1, 7, base + 7 * PAGE, 2 * PAGE, m + 8 * PAGE));
	dtb.guest_phys_addr = base;
	dtb.size = 0;
	say("dtb_zero", io(vm, GH_VM_SET_DTB_CONFIG, &dtb));
	dtb.guest_phys_addr = ~0UL - 1;
	dtb.size = 4;
	say("dtb_overflow", io(vm, GH_VM_SET_DTB_CONFIG, &dtb));
	say("dtb_null", io(vm, GH_VM_SET_DTB_CONFIG, 0));
	d.type = 99;
	d.arg_size = 4;
	d.arg = (unsigned long)&a;
	say("fn_unknown_type", io(vm, GH_VM_ADD_FUNCTION, &d));
	d.type = GH_FN_VCPU;
	d.arg_size = GH_FN_MAX_ARG_SIZE + 1;
	say("fn_arg_too_big", io(vm, GH_VM_ADD_FUNCTION, &d));
	d.arg_size = 8;
	say("fn_vcpu_arg_size", io(vm, GH_VM_ADD_FUNCTION, &d));
	d.arg_size = 4;
	d.arg = 8;
	say("fn_vcpu_arg_pointer", io(vm, GH_VM_ADD_FUNCTION, &d));
	d.arg = (unsigned long)&a;
	a.id = 8;
	say("fn_vcpu_id_8", io(vm, GH_VM_ADD_FUNCTION, &d));
	a.id = 0;
	vcpu = io(vm, GH_VM_ADD_FUNCTION, &d);
	say("fn_vcpu", vcpu < 0 ? vcpu : 0);
	say("fn_vcpu_again", io(vm, GH_VM_ADD_FUNCTION, &d));
	say("vcpu_mmap_size", io(vcpu, GH_VCPU_MMAP_SIZE, 0));
	ret = sys6(SYS_mmap, 0, 2 * PAGE, PROT_RW, MAP_SHARED, vcpu, 0);
	say("vcpu_mmap_two_pages", ret < 0 && ret > -4096 ? ret : 0);
	ret = sys6(SYS_mmap, 0, PAGE, PROT_RW, MAP_SHARED, vcpu, PAGE);
	say("vcpu_mmap_offset", ret < 0 && ret > -4096 ? ret : 0);
	say("vcpu_unknown_ioctl", io(vcpu, GH_VM_START, 0));
	say("vm_unknown_ioctl", io(vm, GH_CREATE_VM, 0));
	say("start_without_dtb", io(vm, GH_VM_START, 0));
	say("run_without_dtb", io(vcpu, GH_VCPU_RUN, 0));
	sys6(SYS_close, vcpu, 0, 0, 0, 0, 0);
	sys6(SYS_close, vm, 0, 0, 0, 0, 0);
	lend(dev);
	sys6(SYS_close, dev, 0, 0, 0, 0, 0);
	say("done", 0);
	sys6(SYS_exit, 0, 0, 0, 0, 0, 0);
	__builtin_unreachable();
}
