/*
 * gunyah probe --active, on the device: open the VM manager's device, ask it
 * to create a VM with each ABI's create-VM ioctl (argument 0), close what it
 * hands back at once (which destroys the VM), and print one line per step.
 *
 * A static AArch64 Linux program with no C library: it runs where Python does
 * not (Android over adb, a guest's busybox init). The ABIs come from the
 * project's tables at build time (GUNYAH_CREATE_VM_ABIS, see probe/active.py),
 * which also reads what this prints:
 *
 *   gunyah-active: open ok | open errno N
 *   gunyah-active: NAME 0xNUMBER vm FD-LINK | answered N | errno N
 */

#define SYS_ioctl 29
#define SYS_openat 56
#define SYS_close 57
#define SYS_write 64
#define SYS_readlinkat 78
#define SYS_exit 93
#define AT_FDCWD (-100)
#define O_RDWR 02
#define O_CLOEXEC 02000000

__asm__(".globl _start\n"
        "_start:\n"
        "  mov x0, sp\n"
        "  and sp, x0, #~15\n"
        "  bl entry\n");

static long sys(long n, long a, long b, long c, long d)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
}

struct line {
	char text[160];
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
	sys(SYS_write, 1, (long)l->text, (long)l->len, 0);
	l->len = 0;
}

static void fd_link(struct line *l, long fd)
{
	char target[96];
	struct line p;
	long n;

	p.len = 0;
	put(&p, "/proc/self/fd/");
	put_number(&p, (unsigned long)fd, 10);
	p.text[p.len] = 0;
	n = sys(SYS_readlinkat, AT_FDCWD, (long)p.text, (long)target, sizeof(target) - 1);
	if (n <= 0) {
		put(l, "-");
		return;
	}
	for (long i = 0; i < n; i++)  /* one word: a link holds no newline we would print */
		if (target[i] <= ' ' || target[i] > '~')
			target[i] = '?';
	target[n] = 0;
	put(l, target);
}

struct abi {
	const char *name;
	unsigned long number;
};

#define X(name, number) { name, number },
static const struct abi abis[] = { GUNYAH_CREATE_VM_ABIS };
#undef X

__attribute__((noreturn, used)) void entry(long *sp)
{
	const char *device = sp[0] > 1 ? (const char *)sp[2] : "/dev/gunyah";
	struct line l;
	long dev, ret;

	l.len = 0;
	put(&l, "gunyah-active: open ");
	dev = sys(SYS_openat, AT_FDCWD, (long)device, O_RDWR | O_CLOEXEC, 0);
	if (dev < 0) {
		put(&l, "errno ");
		put_number(&l, (unsigned long)-dev, 10);
		emit(&l);
		sys(SYS_exit, 1, 0, 0, 0);
	}
	put(&l, "ok");
	emit(&l);
	for (unsigned long i = 0; i < sizeof(abis) / sizeof(abis[0]); i++) {
		put(&l, "gunyah-active: ");
		put(&l, abis[i].name);
		put(&l, " 0x");
		put_number(&l, abis[i].number, 16);
		ret = sys(SYS_ioctl, dev, (long)abis[i].number, 0, 0);
		if (ret < 0) {
			put(&l, " errno ");
			put_number(&l, (unsigned long)-ret, 10);
		} else if (ret > dev) {  /* a new descriptor: the VM, destroyed as it closes */
			put(&l, " vm ");
			fd_link(&l, ret);
			sys(SYS_close, ret, 0, 0, 0);
		} else {  /* not a descriptor opened for us: never close one of ours */
			put(&l, " answered ");
			put_number(&l, (unsigned long)ret, 10);
		}
		emit(&l);
	}
	sys(SYS_close, dev, 0, 0, 0);
	sys(SYS_exit, 0, 0, 0, 0);
	__builtin_unreachable();
}
