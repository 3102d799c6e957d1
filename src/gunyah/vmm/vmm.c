/*
 * vmm IMAGE DTB [MEM_SIZE [BASE [INITRD OFFSET]]]: our VMM, run in a
 * primary VM over /dev/gunyah (the Linux series' v14 ioctls, gunyah_uapi.h).
 *
 * It maps MEM_SIZE bytes (2 MiB unless given) of anonymous memory, copies
 * IMAGE to its start and DTB to the next 4 KiB boundary after it (after the
 * image_size an arm64 Image's header gives, where that is more: the kernel's
 * bss must stay free; Linux: Documentation/arch/arm64/booting.rst), gives the
 * memory to a new VM at guest address BASE (0x80000000 unless given; the
 * DTB's gunyah-vm-config must name the same base), INITRD, if given, to
 * OFFSET in the memory (page-aligned, past the DTB's room: the DTB's /chosen
 * says where it is, as the host wrote it), names the DTB's place
 * and room (GH_VM_SET_DTB_CONFIG), adds a vCPU for each cpu node under the
 * DTB's /cpus (1 to 8), starts the VM and runs each vCPU in a thread of its
 * own (vCPU 0 in the first), printing one line per exit, those of vCPU N > 0
 * with "cpuN " after "vmm: ":
 *
 *   vmm: mmio write 0xADDR LEN 0xVALUE    (VALUE: the 8 bytes it gave)
 *   vmm: mmio read 0xADDR LEN -> 0xVALUE  (VALUE: what it was answered)
 *   vmm: the same again N times           (the vCPU's last exit N times more, right after it:
 *                                          a guest that polls a register prints one line)
 *   vmm: console TEXT                      (a line the guest wrote to the PL011 its DTB names)
 *   vmm: exit powered-off type T reason 0xR | vmm: exit crashed type T reason 0xR
 *                                          (once: the first vCPU to see the VM's end)
 *   vmm: exit load-failed | vmm: exit unknown | vmm: error STEP errno N
 *   vmm: vcpu_run returned N times         (every exit of every vCPU, the PL011's included)
 *   vmm: caller's registers changed by vcpu_run: 0xBITS, then vmm: error CALLER_STATE errno 1
 *                                          (see witnessed_run: never, when all is well)
 *   vmm: life cycle N us                   (GH_CREATE_VM to the VM's teardown, all of it)
 *
 * Reads are answered from a small table (0x6018 and 0x6028, the measured
 * guest's loads: docs/real-gunyah.md section 13), and 0 elsewhere. The
 * PL011 is an idle one that never fills (docs/boot.md section 14): its flag
 * register reads both FIFOs empty, its ID registers read a PL011's (so that
 * Linux's AMBA bus matches its driver), its other registers read what was
 * last written, and none of its accesses is printed.
 *
 * A static AArch64 Linux program with no C library, like probe/active.c:
 * it runs in a boot's busybox initramfs. Built by `python -m gunyah.toolchain`.
 */
#include "gunyah_uapi.h"
#include "nolibc.h" /* _start, sys6, memset, memcpy */

#define SYS_ioctl 29
#define SYS_openat 56
#define SYS_close 57
#define SYS_read 63
#define SYS_write 64
#define SYS_exit 93
#define SYS_exit_group 94
#define SYS_futex 98
#define SYS_clock_gettime 113
#define SYS_munmap 215
#define SYS_mmap 222
#define SYS_madvise 233
#define AT_FDCWD (-100)
#define O_RDONLY 0
#define O_RDWR 02
#define O_CLOEXEC 02000000
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 1
#define MAP_PRIVATE 2
#define MAP_ANONYMOUS 0x20
#define MADV_HUGEPAGE 14
#define EINTR 4
#define CLOCK_MONOTONIC 1

#define DEFAULT_MEM (2UL << 20)
#define DEFAULT_BASE 0x80000000UL
#define MAX_MEM (256UL << 20)
#define DT_ROOM 0x10000UL   /* the DTB's room to grow: the RM edits it in place */
#define MAX_EXITS (1UL << 20)   /* a vCPU's */
#define MAX_VCPUS 8             /* our VM manager's, and the RM's cores */
#define STACK (64UL << 10)      /* a vCPU thread's */
/* a thread of this process (clone(2)), its ID cleared and woken at its exit */
#define CLONE_THREAD_FLAGS (0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x100000 | 0x200000)
#define FUTEX_WAIT 0
#define PAGE 4096UL
#define HUGE (2UL << 20)    /* a transparent huge page: 512 pages in one physical run */

static long sys(long n, long a, long b, long c)
{
	return sys6(n, a, b, c, 0, 0, 0);
}

struct line {
	char text[200];
	unsigned long len;
};

static void put(struct line *l, const char *s)
{
	while (*s && l->len < sizeof(l->text) - 1)
		l->text[l->len++] = *s++;
}

static void put_number(struct line *l, unsigned long v, unsigned base)
{
	char digits[24];
	int n = 0;

	if (base == 16)
		put(l, "0x");
	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n && l->len < sizeof(l->text) - 1)
		l->text[l->len++] = digits[--n];
}

static void emit(struct line *l)
{
	l->text[l->len++] = '\n';
	sys(SYS_write, 1, (long)l->text, (long)l->len);
	l->len = 0;
}

static unsigned long now_us(void)
{
	struct { long sec, nsec; } t = { 0, 0 };

	sys(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&t, 0);
	return (unsigned long)t.sec * 1000000UL + (unsigned long)t.nsec / 1000UL;
}

static __attribute__((noreturn)) void quit(int code)
{
	sys(SYS_exit_group, code, 0, 0); /* every thread */
	__builtin_unreachable();
}

static __attribute__((noreturn)) void fail(const char *step, long err)
{
	struct line l = { .len = 0 };

	put(&l, "vmm: error ");
	put(&l, step);
	put(&l, " errno ");
	put_number(&l, (unsigned long)-err, 10);
	emit(&l);
	quit(1);
}

static unsigned long parse(const char *s, const char *what)
{
	unsigned long v = 0, base = 10;
	int digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++, digits++) {
		unsigned d = *s >= '0' && *s <= '9' ? (unsigned)(*s - '0')
			   : *s >= 'a' && *s <= 'f' ? (unsigned)(*s - 'a' + 10)
			   : *s >= 'A' && *s <= 'F' ? (unsigned)(*s - 'A' + 10) : 99;
		if (d >= base || digits >= 16 || v > (~0UL - d) / base)
			fail(what, -22);
		v = v * base + d;
	}
	if (!digits)
		fail(what, -22);
	return v;
}

/*
 * long witnessed_run(long fd, unsigned long request, unsigned long seed,
 *                    unsigned long *changed)
 *
 * ioctl(fd, request, 0) with this thread's own registers set to values a
 * secondary never has: Q0..Q31 (seed + n and its complement), FPCR, and
 * TPIDR_EL0 (seed); afterwards *changed has bit n set for each Qn that
 * came back different, bit 32 for FPCR, 33 for TPIDR_EL0, 34 for
 * TPIDRRO_EL0, and CNTVCT_EL0 is read (it traps if CNTKCTL_EL1 came back
 * changed). GH_VCPU_RUN runs the secondary on this very CPU, inside the
 * call: what it left in the CPU would show here (docs/boot.md section 12).
 * D8..D15 are saved around it (AAPCS64), FPCR is 0 again after.
 */
__asm__(".arch_extension fp\n"
	".arch_extension simd\n"
	".text\n"
	".globl witnessed_run\n"
	"witnessed_run:\n"
	"  stp d8, d9, [sp, #-64]!\n"
	"  stp d10, d11, [sp, #16]\n"
	"  stp d12, d13, [sp, #32]\n"
	"  stp d14, d15, [sp, #48]\n"
	"  mov x9, x2\n"
	"  .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"  add x10, x9, #\\n\n"
	"  mvn x11, x10\n"
	"  fmov d\\n, x10\n"
	"  mov v\\n\\().d[1], x11\n"
	"  .endr\n"
	"  mov x10, #0x03000000\n"
	"  msr fpcr, x10\n"
	"  msr tpidr_el0, x9\n"
	"  mrs x12, tpidrro_el0\n"
	"  mov x2, #0\n"
	"  mov x8, #29\n" /* ioctl */
	"  svc #0\n"
	"  mov x13, #0\n"
	"  .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"  add x10, x9, #\\n\n"
	"  mvn x11, x10\n"
	"  fmov x14, d\\n\n"
	"  mov x15, v\\n\\().d[1]\n"
	"  cmp x14, x10\n"
	"  ccmp x15, x11, #0, eq\n"
	"  cset x14, ne\n"
	"  orr x13, x13, x14, lsl #\\n\n"
	"  .endr\n"
	"  mrs x14, fpcr\n"
	"  mov x10, #0x03000000\n"
	"  cmp x14, x10\n"
	"  cset x14, ne\n"
	"  orr x13, x13, x14, lsl #32\n"
	"  mrs x14, tpidr_el0\n"
	"  cmp x14, x9\n"
	"  cset x14, ne\n"
	"  orr x13, x13, x14, lsl #33\n"
	"  mrs x14, tpidrro_el0\n"
	"  cmp x14, x12\n"
	"  cset x14, ne\n"
	"  orr x13, x13, x14, lsl #34\n"
	"  mrs x14, cntvct_el0\n"
	"  msr fpcr, xzr\n"
	"  msr tpidr_el0, xzr\n"
	"  str x13, [x3]\n"
	"  ldp d10, d11, [sp, #16]\n"
	"  ldp d12, d13, [sp, #32]\n"
	"  ldp d14, d15, [sp, #48]\n"
	"  ldp d8, d9, [sp], #64\n"
	"  ret\n");
long witnessed_run(long fd, unsigned long request, unsigned long seed, unsigned long *changed);

/* Read a whole file into [at, at+room); its size. */
static unsigned long load(const char *path, unsigned char *at, unsigned long room, const char *what)
{
	long fd = sys(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC), n;
	unsigned long got = 0;

	if (fd < 0)
		fail(what, fd);
	for (;;) {
		if (got == room) { /* full: anything more does not fit */
			unsigned char probe;

			n = sys(SYS_read, fd, (long)&probe, 1);
			if (n > 0)
				fail(what, -27); /* EFBIG */
			break;
		}
		n = sys(SYS_read, fd, (long)(at + got), (long)(room - got));
		if (n == -EINTR)
			continue;
		if (n < 0)
			fail(what, n);
		if (n == 0)
			break;
		got += (unsigned long)n;
	}
	sys(SYS_close, fd, 0, 0);
	return got;
}

static unsigned be32(const unsigned char *p)
{
	return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

struct tree_facts {
	unsigned long uart; /* the PL011's guest address, or 0 */
	unsigned cpus;      /* nodes cpu or cpu@N under /cpus */
};

/*
 * What the DTB says that our VMM needs: the PL011 it names (a node
 * compatible with "arm,pl011" whose reg starts with a 64-bit address), and
 * how many cpus. Bounded: every offset is checked against the blob's size,
 * and the walk is one pass, which stops where the blob stops being a tree.
 */
static void scan_tree(const unsigned char *dtb, unsigned long size, struct tree_facts *f)
{
	unsigned long off_struct, off_strings, len_struct, len_strings, at, end, reg = 0;
	int pl011 = 0, depth = 0, in_cpus = 0;

	f->uart = 0;
	f->cpus = 0;
	if (size < 40 || be32(dtb) != 0xd00dfeed || be32(dtb + 4) > size)
		return;
	size = be32(dtb + 4);
	off_struct = be32(dtb + 8);
	off_strings = be32(dtb + 12);
	len_strings = be32(dtb + 32);
	len_struct = be32(dtb + 36);
	if (off_struct > size || len_struct > size - off_struct || off_strings > size ||
	    len_strings > size - off_strings)
		return;
	at = off_struct;
	end = off_struct + len_struct;
	while (at + 4 <= end) {
		unsigned token = be32(dtb + at);

		at += 4;
		if (token == 1) { /* FDT_BEGIN_NODE: a name, padded */
			const char *name = (const char *)dtb + at;
			unsigned long n = 0;

			pl011 = 0;
			reg = 0;
			while (at + n < end && name[n])
				n++;
			if (at + n == end) /* no NUL in the block: not a tree */
				return;
			depth++;
			if (depth == 2 && streq(name, "cpus"))
				in_cpus = 1;
			else if (depth == 3 && in_cpus && n >= 3 && name[0] == 'c' && name[1] == 'p' &&
				 name[2] == 'u' && (n == 3 || name[3] == '@'))
				f->cpus++;
			at = (at + n + 4) & ~3UL;
		} else if (token == 3) { /* FDT_PROP */
			unsigned long len, name;

			if (at + 8 > end)
				return;
			len = be32(dtb + at);
			name = be32(dtb + at + 4);
			at += 8;
			if (len > end - at || name >= len_strings)
				return;
			const char *pname = (const char *)dtb + off_strings + name;
			unsigned long room = len_strings - name, k;

			for (k = 0; k < room && pname[k]; k++)
				;
			if (k == room)
				return;
			if (streq(pname, "compatible")) {
				unsigned long i = 0;

				while (i < len) { /* a string list */
					const char *s = (const char *)dtb + at + i;
					unsigned long j = 0;

					while (i + j < len && s[j])
						j++;
					if (i + j < len && j == 9 && streq(s, "arm,pl011"))
						pl011 = 1;
					i += j + 1;
				}
			} else if (streq(pname, "reg") && len >= 8) {
				reg = (unsigned long)be32(dtb + at) << 32 | be32(dtb + at + 4);
			}
			at = (at + len + 3) & ~3UL;
		} else if (token == 2) { /* FDT_END_NODE */
			if (pl011 && reg && !f->uart)
				f->uart = reg;
			pl011 = 0;
			if (depth == 2)
				in_cpus = 0;
			depth--;
		} else if (token == 9) { /* FDT_END */
			break;
		} else if (token != 4) { /* not FDT_NOP either: not a tree */
			return;
		}
	}
}

#define IMAGE_MAGIC 0x644d5241U /* "ARM\x64" at byte 56 of an arm64 Image */

static unsigned long le_bytes(const unsigned char *p, unsigned long n);

/* The bytes the image needs from its start: its size, or an Image's image_size if more. */
static unsigned long image_span(const unsigned char *image, unsigned long size)
{
	unsigned long declared;

	if (size < 64 || le_bytes(image + 56, 4) != IMAGE_MAGIC)
		return size;
	declared = le_bytes(image + 16, 8);
	return declared > size ? declared : size;
}

struct answer {
	unsigned long addr, value;
};

/* What the measured guest's loads were answered (docs/real-gunyah.md section 13). */
static const struct answer answers[] = {
	{ 0x6018, 0x1122334455667788UL },
	{ 0x6028, 0xa5a5a5a5UL },
};

/* The PL011's registers (Arm's PL011 TRM, section 3.2; as QEMU's hw/char/pl011.c answers) */
#define UART_DR 0x00
#define UART_FR 0x18
#define UART_FR_IDLE 0x90 /* TXFE | RXFE: both FIFOs empty, not busy, TXFF clear */
#define UART_ID 0xfe0     /* UARTPeriphID0..3, UARTPCellID0..3, one byte a word */
#define UART_REGS 64      /* the registers a write is kept for: 0x000..0x0fc */
static const unsigned char uart_id[8] = { 0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };
static unsigned uart_reg[UART_REGS];

/* What a read of the PL011 at offset `off` answers. */
static unsigned long uart_read(unsigned long off)
{
	if (off == UART_FR)
		return UART_FR_IDLE;
	if (off >= UART_ID && off < UART_ID + 32 && off % 4 == 0)
		return uart_id[(off - UART_ID) / 4];
	if (off != UART_DR && off / 4 < UART_REGS && off % 4 == 0)
		return uart_reg[off / 4];
	return 0;
}

static unsigned long le_bytes(const unsigned char *p, unsigned long n)
{
	unsigned long v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

static unsigned long uart; /* the PL011's guest address (scan_tree), or 0 */

/* One vCPU: its file, its run structure, and what its thread saw. */
struct vcpu {
	long fd;
	struct gh_vcpu_run *run;
	unsigned long exits;
	int tid; /* its thread's ID while it runs (CLONE_PARENT_SETTID, CHILD_CLEARTID) */
	unsigned index;
	struct line last;    /* its last exit's line, printed */
	unsigned long again; /* the same exit since, not printed yet */
};

static struct vcpu vcpus[MAX_VCPUS];
static unsigned char stacks[MAX_VCPUS][STACK] __attribute__((aligned(16)));
static struct line console;        /* the PL011's line so far: every vCPU writes it */
static int console_lock, end_said; /* the first vCPU to see the VM's end says it */

static void lock(int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		;
}

static void unlock(int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* "vmm: " and, for vCPU N > 0, "cpuN " */
static void start_line(struct line *l, const struct vcpu *v)
{
	put(l, "vmm: ");
	if (v->index) {
		put(l, "cpu");
		put_number(l, v->index, 10);
		put(l, " ");
	}
}

/* "vmm: [cpuN ]the same again N times": the exits say_exit counted, if any;
 * and nothing to count them against after it (other lines come between). */
static void say_again(struct vcpu *v)
{
	struct line l = { .len = 0 };

	v->last.len = 0;
	if (!v->again)
		return;
	start_line(&l, v);
	put(&l, "the same again ");
	put_number(&l, v->again, 10);
	put(&l, " times");
	emit(&l);
	v->again = 0;
}

/* An exit's line: printed, unless it is the vCPU's last line again, right
 * after it, which is counted instead: each line costs the primary's console
 * about 2.7 ms, so a guest polling a register would run at that pace
 * (docs/boot.md section 21). */
static void say_exit(struct vcpu *v, struct line *l)
{
	unsigned long i = 0;

	if (l->len == v->last.len) {
		while (i < l->len && l->text[i] == v->last.text[i])
			i++;
		if (i == l->len) {
			v->again++;
			l->len = 0;
			return;
		}
	}
	say_again(v);
	memcpy(v->last.text, l->text, l->len);
	v->last.len = l->len;
	emit(l);
}

static void flush_console(void)
{
	struct line l = { .len = 0 };

	if (!console.len)
		return;
	put(&l, "vmm: console ");
	for (unsigned long i = 0; i < console.len; i++)
		l.text[l.len++] = console.text[i];
	emit(&l);
	console.len = 0;
}

/*
 * long spawn(unsigned long flags, void *stack_top, int *tid, void (*fn)(struct vcpu *),
 *            struct vcpu *arg)
 *
 * clone(2) a thread that runs fn(arg) on the stack given and exits (this
 * thread only); the parent gets its ID, or -errno. *tid is the thread's ID
 * from before clone returns until the thread has exited, then 0 (a futex).
 */
__asm__(".text\n"
	".globl spawn\n"
	"spawn:\n"
	"  stp x3, x4, [x1, #-16]!\n" /* fn and arg on top of the new stack */
	"  mov x4, x2\n"              /* child_tidptr */
	"  mov x3, xzr\n"             /* tls */
	"  mov x8, #220\n"            /* clone(flags, newsp, parent_tidptr, tls, child_tidptr) */
	"  svc #0\n"
	"  cbz x0, 1f\n"
	"  ret\n"
	"1:ldp x3, x0, [sp], #16\n"
	"  blr x3\n"
	"  mov x0, #0\n"
	"  mov x8, #93\n"             /* exit: this thread */
	"  svc #0\n");
long spawn(unsigned long flags, void *stack_top, int *tid, void (*fn)(struct vcpu *),
	   struct vcpu *arg);

/* Run one vCPU until its VM ends (or it fails): its exits, one line each. */
static void run_vcpu(struct vcpu *v)
{
	struct gh_vcpu_run *run = v->run;
	struct line l = { .len = 0 };
	unsigned long changed = 0;
	long ret;

	for (;;) {
		ret = witnessed_run(v->fd, GH_VCPU_RUN,
				    0x6b65707400000000UL + (v->exits << 8) + v->index, &changed);
		if (changed) {
			say_again(v);
			start_line(&l, v);
			put(&l, "caller's registers changed by vcpu_run: ");
			put_number(&l, changed, 16);
			emit(&l);
			fail("CALLER_STATE", -1);
		}
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			say_again(v);
			fail("GH_VCPU_RUN", ret);
		}
		if (++v->exits > MAX_EXITS) {
			say_again(v);
			start_line(&l, v);
			put(&l, "stopped after ");
			put_number(&l, MAX_EXITS, 10);
			put(&l, " exits");
			emit(&l);
			quit(1);
		}
		if (run->exit_reason == GH_VCPU_EXIT_MMIO) {
			unsigned long addr = run->mmio.phys_addr, len = run->mmio.len, value = 0;
			unsigned long i;

			if (len > 8)
				len = 8;
			if (run->mmio.is_write && uart && addr == uart + UART_DR) {
				char c = (char)run->mmio.data[0];

				lock(&console_lock);
				if (c == '\n' || console.len >= 120) {
					say_again(v);
					flush_console();
				}
				if (c != '\n' && c != '\r')
					console.text[console.len++] = c >= ' ' && c <= '~' ? c : '?';
				unlock(&console_lock);
				continue;
			}
			if (uart && addr >= uart && addr < uart + PAGE) {
				unsigned long off = addr - uart;

				if (!run->mmio.is_write) {
					value = uart_read(off);
					for (i = 0; i < 8; i++)
						run->mmio.data[i] = (unsigned char)(value >> (8 * i));
				} else if (off / 4 < UART_REGS && off % 4 == 0) {
					uart_reg[off / 4] = (unsigned)le_bytes(run->mmio.data, 4);
				}
				continue; /* the console's registers: not printed */
			}
			start_line(&l, v);
			if (run->mmio.is_write) {
				put(&l, "mmio write ");
				put_number(&l, addr, 16);
				put(&l, " ");
				put_number(&l, len, 10);
				put(&l, " ");
				put_number(&l, le_bytes(run->mmio.data, 8), 16);
				say_exit(v, &l);
				continue;
			}
			for (i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
				if (answers[i].addr == addr)
					value = answers[i].value;
			for (i = 0; i < 8; i++)
				run->mmio.data[i] = (unsigned char)(value >> (8 * i));
			put(&l, "mmio read ");
			put_number(&l, addr, 16);
			put(&l, " ");
			put_number(&l, len, 10);
			put(&l, " -> ");
			put_number(&l, value, 16);
			say_exit(v, &l);
			continue;
		}
		if (run->exit_reason == GH_VCPU_EXIT_STATUS) {
			unsigned long reason = le_bytes(run->status.exit_info.reason,
							run->status.exit_info.reason_size > 8
								? 8 : run->status.exit_info.reason_size);

			say_again(v);
			if (__atomic_exchange_n(&end_said, 1, __ATOMIC_ACQ_REL))
				return; /* another vCPU said it */
			lock(&console_lock);
			flush_console();
			unlock(&console_lock);
			if (run->status.status == GH_VM_STATUS_LOAD_FAILED) {
				put(&l, "vmm: exit load-failed");
			} else {
				put(&l, run->status.status == GH_VM_STATUS_CRASHED ? "vmm: exit crashed type "
										  : "vmm: exit powered-off type ");
				put_number(&l, run->status.exit_info.type, 10);
				put(&l, " reason ");
				put_number(&l, reason, 16);
			}
			emit(&l);
			return;
		}
		say_again(v);
		lock(&console_lock);
		flush_console();
		unlock(&console_lock);
		start_line(&l, v);
		put(&l, "exit unknown");
		emit(&l);
		return;
	}
}

__attribute__((noreturn, used)) void entry(long *sp)
{
	long argc = sp[0];
	const char **argv = (const char **)(sp + 1);
	unsigned long mem_size = DEFAULT_MEM, base = DEFAULT_BASE, image_size, dt_off, dt_size,
		      dt_room, exits = 0, rd_off = 0, rd_size = 0;
	struct gh_userspace_memory_region region;
	struct gh_vm_dtb_config dtb;
	struct gh_fn_vcpu_arg vcpu_arg;
	struct gh_fn_desc desc;
	struct tree_facts facts;
	struct line l = { .len = 0 };
	unsigned char *mem;
	long dev, vm, ret, map = 0;
	unsigned long began;
	unsigned n;

	if (argc < 3 || argc == 6 || argc > 7) {
		put(&l, "usage: vmm IMAGE DTB [MEM_SIZE [BASE [INITRD OFFSET]]]");
		emit(&l);
		quit(2);
	}
	if (argc > 3)
		mem_size = parse(argv[3], "MEM_SIZE");
	if (argc > 4)
		base = parse(argv[4], "BASE");
	if (mem_size < 2 * PAGE || mem_size > MAX_MEM || mem_size % PAGE || base % PAGE ||
	    base + mem_size < base)
		fail("MEM_SIZE", -22);
	/* 2 MiB aligned and asked for as huge pages, so that the VM's memory is a
	 * few physical runs, each one entry of the parcel's SGL, not 512 scattered
	 * pages; where the kernel gives small pages all the same it still works */
	mem = (unsigned char *)sys6(SYS_mmap, 0, (long)(mem_size + HUGE), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((long)mem < 0 && (long)mem > -4096)
		fail("mmap", (long)mem);
	mem = (unsigned char *)(((unsigned long)mem + HUGE - 1) & ~(HUGE - 1));
	sys(SYS_madvise, (long)mem, (long)mem_size, MADV_HUGEPAGE);
	for (unsigned long off = 0; off < mem_size; off += PAGE)
		mem[off] = 0; /* every page now: the VM manager pins them all */
	image_size = load(argv[1], mem, mem_size - PAGE, "IMAGE");
	dt_off = image_span(mem, image_size);
	if (dt_off > mem_size - PAGE)
		fail("IMAGE", -27); /* EFBIG: its bss leaves no room for the DTB */
	dt_off = (dt_off + PAGE - 1) & ~(PAGE - 1);
	if (!dt_off)
		dt_off = PAGE;
	dt_size = load(argv[2], mem + dt_off, mem_size - dt_off, "DTB");
	dt_room = mem_size - dt_off < DT_ROOM ? mem_size - dt_off : DT_ROOM;
	if (dt_size > dt_room)
		dt_room = dt_size;
	scan_tree(mem + dt_off, dt_size, &facts);
	uart = facts.uart;
	if (facts.cpus > MAX_VCPUS)
		fail("DTB", -7); /* E2BIG: more cpus than a VM may have */
	if (!facts.cpus)
		facts.cpus = 1; /* the RM refuses it at VM_INIT: let it say so */
	if (argc > 5) {
		rd_off = parse(argv[6], "OFFSET");
		if (rd_off % PAGE || rd_off < dt_off + dt_room || rd_off >= mem_size)
			fail("OFFSET", -22); /* over the DTB's room, or outside the memory */
		rd_size = load(argv[5], mem + rd_off, mem_size - rd_off, "INITRD");
	}

	dev = sys(SYS_openat, AT_FDCWD, (long)"/dev/gunyah", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		fail("open /dev/gunyah", dev);
	began = now_us();
	vm = sys(SYS_ioctl, dev, GH_CREATE_VM, 0);
	if (vm < 0)
		fail("GH_CREATE_VM", vm);
	region.label = 0;
	region.flags = GH_MEM_ALLOW_READ | GH_MEM_ALLOW_WRITE | GH_MEM_ALLOW_EXEC;
	region.guest_phys_addr = base;
	region.memory_size = mem_size;
	region.userspace_addr = (unsigned long)mem;
	ret = sys(SYS_ioctl, vm, GH_VM_SET_USER_MEM_REGION, (long)&region);
	if (ret < 0)
		fail("GH_VM_SET_USER_MEM_REGION", ret);
	dtb.guest_phys_addr = base + dt_off;
	dtb.size = dt_room;
	ret = sys(SYS_ioctl, vm, GH_VM_SET_DTB_CONFIG, (long)&dtb);
	if (ret < 0)
		fail("GH_VM_SET_DTB_CONFIG", ret);
	for (n = 0; n < facts.cpus; n++) {
		struct vcpu *v = &vcpus[n];

		v->index = n;
		vcpu_arg.id = n;
		desc.type = GH_FN_VCPU;
		desc.arg_size = sizeof(vcpu_arg);
		desc.arg = (unsigned long)&vcpu_arg;
		v->fd = sys(SYS_ioctl, vm, GH_VM_ADD_FUNCTION, (long)&desc);
		if (v->fd < 0)
			fail("GH_VM_ADD_FUNCTION", v->fd);
		map = sys(SYS_ioctl, v->fd, GH_VCPU_MMAP_SIZE, 0);
		if (map < (long)sizeof(*v->run))
			fail("GH_VCPU_MMAP_SIZE", map < 0 ? map : -22);
		v->run = (struct gh_vcpu_run *)sys6(SYS_mmap, 0, map, PROT_READ | PROT_WRITE,
						    MAP_SHARED, v->fd, 0);
		if ((long)v->run < 0 && (long)v->run > -4096)
			fail("mmap vcpu", (long)v->run);
	}
	ret = sys(SYS_ioctl, vm, GH_VM_START, 0);
	if (ret < 0)
		fail("GH_VM_START", ret);
	put(&l, "vmm: started VM, image ");
	put_number(&l, image_size, 16);
	put(&l, " bytes at ");
	put_number(&l, base, 16);
	put(&l, ", DTB at ");
	put_number(&l, base + dt_off, 16);
	if (rd_size) {
		put(&l, ", initrd ");
		put_number(&l, rd_size, 16);
		put(&l, " bytes at ");
		put_number(&l, base + rd_off, 16);
	}
	emit(&l);

	for (n = 1; n < facts.cpus; n++) {
		ret = spawn(CLONE_THREAD_FLAGS, stacks[n] + STACK, &vcpus[n].tid, run_vcpu, &vcpus[n]);
		if (ret < 0)
			fail("clone", ret);
	}
	run_vcpu(&vcpus[0]);
	for (n = 1; n < facts.cpus; n++) {
		int tid;

		while ((tid = __atomic_load_n(&vcpus[n].tid, __ATOMIC_ACQUIRE)) != 0)
			sys6(SYS_futex, (long)&vcpus[n].tid, FUTEX_WAIT, tid, 0, 0, 0);
	}
	for (n = 0; n < facts.cpus; n++)
		exits += vcpus[n].exits;
	put(&l, "vmm: vcpu_run returned ");
	put_number(&l, exits, 10);
	put(&l, " times");
	emit(&l);
	for (n = 0; n < facts.cpus; n++) {
		sys(SYS_munmap, (long)vcpus[n].run, map, 0);
		sys(SYS_close, vcpus[n].fd, 0, 0);
	}
	sys(SYS_close, vm, 0, 0); /* the last close tears the VM down, before it returns */
	sys(SYS_close, dev, 0, 0);
	put(&l, "vmm: life cycle ");
	put_number(&l, now_us() - began, 10);
	put(&l, " us");
	emit(&l);
	put(&l, "vmm: done");
	emit(&l);
	quit(0);
}
