/*
 * A hostile secondary VM's guest for the world switch (docs/boot.md section
 * 12). Linked at 0x80000000; it reports through stores to 0x7000, in its
 * VMMIO window, which its VMM prints as "vmm: mmio write 0x7000 8 VALUE".
 *
 * 1. With its own vectors, it reads and writes what is not its own: the
 *    primary's RAM (its first page, its kernel), the shim's code, vCPU 0's
 *    mailbox, the secondaries' stage-2 tables, and jumps into the primary's
 *    RAM. Each must be an external abort at its own vector, which stores
 *    ESR_EL1 to 0x7000 and FAR_EL1 to 0x7008 and goes on past the access
 *    (a jump: back to the link register). Then it reads the GIC's
 *    distributor and fw_cfg: VMMIO reads its VMM answers.
 * 2. It sets every EL1 register it can write, the timers, FPCR and Q0..Q31
 *    to odd values (its VMM checks that its own stayed its own).
 * 2b. Its debug registers and PMU (docs/boot.md section 19): each is its
 *    own, zero at its first touch (not the primary's); the OS lock and
 *    debug ROM registers read as zero and ignore writes, 2,000 times over
 *    with any value. It sets a
 *    breakpoint's and a watchpoint's value and control registers (not
 *    enabled), an event counter's type and PMSELR_EL0, and starts its
 *    cycle counter.
 * 3. It spins for 100 ms of its virtual counter (CNTFRQ / 10 ticks): the
 *    host's interrupts end vcpu_run "ready" meanwhile, again and again.
 * 4. It checks that its registers still hold what it wrote, across all
 *    those switches, and stores the number that do not to 0x7010; the
 *    number of its debug and PMU checks that failed (2b's, and its values
 *    of 2b still its own, its cycle counter counted) to 0x7020.
 * 5. Its vGIC (the RM's GICv3: distributor at 0x40010000, redistributor at
 *    0x40020000, each access emulated by the host's model): it wakes its
 *    redistributor, puts SPI 8 (interrupt ID 40) in Group 1 and enables it,
 *    turns the distributor's Group 1 on and its CPU interface's
 *    (ICC_PMR_EL1, ICC_IGRPEN1_EL1: the virtual interface, HCR_EL2.IMO),
 *    unmasks IRQs and sets the SPI pending itself (GICD_SETSPI_NSR), then
 *    waits for it, a second at most. Its IRQ vector acknowledges
 *    (ICC_IAR1_EL1), stores the INTID to 0x7018, turns its timers off and
 *    ends the interrupt (ICC_EOIR1_EL1). No interrupt within the second:
 *    it stores 0 there. Then the same for its virtual timer: PPI 27 in
 *    Group 1 and enabled in its redistributor, the timer armed 10 ms
 *    ahead, waiting in WFI (which traps: vcpu_run says EXPECTS_WAKEUP, and
 *    the timer, firing in a run or past the host's tick, is masked and
 *    made pending as PPI 27 in the vGIC: docs/boot.md section 17). Then its
 *    EL1 physical timer, PPI 30, the same way (section 20). Then its
 *    virtual timer's PPI, disabled, is pending while the timer fires and no
 *    longer once it turns the timer off; enabled again, it brings no
 *    interrupt: the number of these checks that failed goes to 0x7028.
 *    Then it polls 0x7030, 100 reads.
 * 6. PSCI SYSTEM_OFF over HVC.
 */
#define REPORT 0x7000

	.arch_extension fp
	.arch_extension simd

	.macro	tryload addr
	ldr	x1, =\addr
	ldr	x2, [x1]
	.endm

	.macro	trystore addr
	ldr	x1, =\addr
	str	x1, [x1]
	.endm

#include "vgic.h" /* VGIC_TAKE_SPI */

	.text
	.global _start
_start:
	mov	x19, #REPORT
	adr	x1, vectors
	msr	vbar_el1, x1
	isb

	/* 1: what is not its own */
	tryload	0x40000000		/* the primary's RAM: its first page */
	trystore 0x40200000		/* the primary's kernel */
	tryload	0x7fe00000		/* the shim's code */
	trystore 0x7ff10000		/* vCPU 0's mailbox: a forged request */
	tryload	0x7ffe2000		/* the secondaries' stage-2 tables */
	ldr	x1, =0x40000000
	blr	x1			/* run the primary's RAM */
	tryload	0x08000000		/* the GIC's distributor: a VMMIO read */
	tryload	0x09020000		/* fw_cfg: a VMMIO read */

	/* 2: odd values everywhere a guest writes */
	mov	x1, #(3 << 20)		/* CPACR_EL1.FPEN: FP/SIMD on at EL1 */
	msr	cpacr_el1, x1
	isb
	ldr	x1, =0x5a5a00005a5a0000
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	add	x2, x1, #\n
	mvn	x3, x2
	fmov	d\n, x2
	mov	v\n\().d[1], x3
	.endr
	ldr	x2, =0x03c00000		/* FPCR: AHP off, DN, FZ, RMode toward zero */
	msr	fpcr, x2
	ldr	x2, =0x08000000		/* FPSR: QC */
	msr	fpsr, x2
	bl	odd_values
	bl	set_sysregs

	/* 2b: debug and PMU registers (set_sysregs's MDSCR_EL1 was the first
	 * touch of its debug registers) */
	mov	x23, #0			/* checks failed */
	.macro	zero reg
	mrs	x2, \reg
	cmp	x2, #0
	cinc	x23, x23, ne
	.endm
	zero	dbgwvr0_el1		/* its own: zero, whatever the primary's */
	zero	dbgbcr0_el1
	zero	pmcntenset_el0		/* the first touch of its PMU */
	zero	pmselr_el0
	mov	x2, #1
	msr	oslar_el1, x2		/* the OS lock: ignored */
	zero	oslsr_el1
	zero	mdrar_el1
	/* a flood of them, each a trap the shim answers itself: any value
	 * written to the OS lock and double lock, and what they read */
	mov	x2, #2000
	mov	x4, #0			/* what the reads gave, or-ed */
	ldr	x5, =0x9e3779b97f4a7c15
1:	mul	x6, x2, x5
	msr	oslar_el1, x6
	msr	osdlr_el1, x6
	mrs	x3, oslsr_el1
	orr	x4, x4, x3
	mrs	x3, osdlr_el1
	orr	x4, x4, x3
	mrs	x3, mdrar_el1
	orr	x4, x4, x3
	subs	x2, x2, #1
	b.ne	1b
	cmp	x4, #0
	cinc	x23, x23, ne
	bl	set_debug_pmu
	isb
	mrs	x22, pmccntr_el0

	/* 3: spin 100 ms of the virtual counter */
	mrs	x4, cntfrq_el0
	mov	x5, #10
	udiv	x4, x4, x5
	isb
	mrs	x5, cntvct_el0
	add	x5, x5, x4
1:	isb
	mrs	x6, cntvct_el0
	cmp	x6, x5
	b.lo	1b

	/* 4: still its own? */
	mov	x7, #0			/* registers that changed */
	ldr	x1, =0x5a5a00005a5a0000
	.irp	n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	add	x2, x1, #\n
	mvn	x3, x2
	fmov	x4, d\n
	mov	x5, v\n\().d[1]
	cmp	x4, x2
	ccmp	x5, x3, #0, eq
	cinc	x7, x7, ne
	.endr
	mrs	x2, fpcr
	ldr	x3, =0x03c00000
	cmp	x2, x3
	cinc	x7, x7, ne
	mrs	x2, fpsr
	ldr	x3, =0x08000000
	cmp	x2, x3
	cinc	x7, x7, ne
	bl	odd_values
	.macro	same reg
	mrs	x2, \reg
	ldr	x3, [x20], #8
	cmp	x2, x3
	cinc	x7, x7, ne
	.endm
	same	tpidr_el0
	same	tpidrro_el0
	same	tpidr_el1
	same	contextidr_el1
	same	ttbr0_el1
	same	ttbr1_el1
	same	tcr_el1
	same	mair_el1
	same	par_el1
	same	sp_el0
	same	elr_el1
	same	spsr_el1
	same	cntkctl_el1
	same	mdscr_el1
	same	cntv_cval_el0
	same	cntp_cval_el0
	same	cntv_ctl_el0
	same	cntp_ctl_el0
	str	x7, [x19, #16]		/* 0x7010: how many changed */
	bl	check_debug_pmu
	str	x23, [x19, #32]		/* 0x7020: debug and PMU checks failed */

	/* 5: an interrupt through its vGIC */
	VGIC_TAKE_SPI 1, 8		/* ID 40: bit 8 of the second word */
	mov	x10, #0			/* the IRQ vector sets it */
	mrs	x4, cntfrq_el0
	mrs	x5, cntvct_el0
	add	x5, x5, x4		/* a second at most */
	msr	daifclr, #2		/* IRQs on */
	mov	w2, #40
	str	w2, [x1, #0x40]		/* GICD_SETSPI_NSR: ID 40 pending */
1:	cbnz	x10, 2f
	isb
	mrs	x6, cntvct_el0
	cmp	x6, x5
	b.lo	1b
	str	xzr, [x19, #24]		/* 0x7018: no interrupt came */
2:	msr	daifset, #2

	/* 5b: its virtual timer, PPI 27, then its EL1 physical timer, PPI 30,
	 * through its vGIC */
	ldr	x1, =0x40030000		/* its redistributor's SGI_base */
	.macro	take_timer ppi, ctl, tval
	mov	w2, #(1 << \ppi)
	str	w2, [x1, #0x80]		/* GICR_IGROUPR0: the PPI in Group 1 */
	str	w2, [x1, #0x100]	/* GICR_ISENABLER0 */
	mov	x10, #0
	mrs	x4, cntfrq_el0
	mov	x5, #100
	udiv	x5, x4, x5
	msr	\tval, x5		/* 10 ms */
	mov	x2, #1
	msr	\ctl, x2		/* enabled, not masked */
	isb
	mrs	x5, cntvct_el0
	add	x5, x5, x4		/* a second at most */
	/* IRQs stay masked from the check to the WFI (a pending one still ends
	 * the wait: Arm ARM, WFI wake-up events), and are taken after it: one
	 * taken between the check and the WFI would leave it waiting for good */
.Lwait\@:
	cbnz	x10, .Ltaken\@
	wfi				/* traps: its owner's vcpu_run says it expects a wake-up */
	msr	daifclr, #2		/* take it */
	isb
	msr	daifset, #2
	mrs	x6, cntvct_el0
	cmp	x6, x5
	b.lo	.Lwait\@
	str	xzr, [x19, #24]		/* 0x7018: no interrupt came */
.Ltaken\@:
	msr	daifset, #2
	.endm
	take_timer 27, cntv_ctl_el0, cntv_tval_el0
	take_timer 30, cntp_ctl_el0, cntp_tval_el0

	/* 5c: its timer's PPI is pending while the timer's level holds, and no
	 * longer once it turns the timer off (as kvm-unit-tests' timer test
	 * asks: arm/timer.c test_timer_pending); with the PPI disabled, then
	 * enabled again, no interrupt comes */
	mov	x24, #0			/* checks failed */
	mov	w2, #(1 << 27)
	str	w2, [x1, #0x180]	/* GICR_ICENABLER0: PPI 27 off */
	mrs	x3, cntvct_el0
	sub	x3, x3, #1
	msr	cntv_cval_el0, x3	/* in the past */
	mov	x3, #1
	msr	cntv_ctl_el0, x3	/* enabled: its level rises */
	isb
	ldr	w3, [x1, #0x200]	/* GICR_ISPENDR0 */
	tst	w3, #(1 << 27)
	cinc	x24, x24, eq		/* must be pending */
	msr	cntv_ctl_el0, xzr	/* off: its level falls */
	isb
	ldr	w3, [x1, #0x200]
	tst	w3, #(1 << 27)
	cinc	x24, x24, ne		/* must be pending no more */
	mov	x10, #0
	str	w2, [x1, #0x100]	/* GICR_ISENABLER0: PPI 27 on again */
	msr	daifclr, #2
	isb
	ldr	w3, [x1, #0x200]	/* an exit, after which the interrupt would come */
	isb
	msr	daifset, #2
	cmp	x10, #0
	cinc	x24, x24, ne		/* none came */
	str	x24, [x19, #40]		/* 0x7028: its checks failed */

	/* 5d: a poll, 100 reads of one VMMIO register (its VMM prints the
	 * first and counts the rest) */
	mov	x2, #100
1:	ldr	x3, [x19, #48]		/* 0x7030 */
	subs	x2, x2, #1
	b.ne	1b

	/* 6: off */
	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0008		/* PSCI SYSTEM_OFF */
	hvc	#0
	b	.

/* x20: the odd values' table */
odd_values:
	adr	x20, values
	ret

/* Each register of the table gets its value (in the table's order). */
set_sysregs:
	mov	x21, x30
	bl	odd_values
	.macro	put reg
	ldr	x2, [x20], #8
	msr	\reg, x2
	.endm
	put	tpidr_el0
	put	tpidrro_el0
	put	tpidr_el1
	put	contextidr_el1
	put	ttbr0_el1
	put	ttbr1_el1
	put	tcr_el1
	put	mair_el1
	put	par_el1
	put	sp_el0
	put	elr_el1
	put	spsr_el1
	put	cntkctl_el1
	put	mdscr_el1
	put	cntv_cval_el0
	put	cntp_cval_el0
	put	cntv_ctl_el0
	put	cntp_ctl_el0
	isb
	ret	x21

/* 2b's values: a breakpoint and a watchpoint set but not enabled (E clear),
 * PMSELR_EL0 3, event counter 0 counting CPU_CYCLES (0x11), the cycle
 * counter on (PMCR_EL0.E, PMCNTENSET_EL0 bit 31) at EL0 and EL1 */
set_debug_pmu:
	ldr	x2, =0x80001000
	msr	dbgbvr0_el1, x2
	mov	x2, #0x1e4		/* BAS 0xf, PMC EL1, E clear */
	msr	dbgbcr0_el1, x2
	ldr	x2, =0x80002000
	msr	dbgwvr0_el1, x2
	mov	x2, #0x1fe4		/* BAS 0xff, PAC EL1, E clear */
	msr	dbgwcr0_el1, x2
	mov	x2, #3
	msr	pmselr_el0, x2
	mov	x2, #0x11
	msr	pmevtyper0_el0, x2
	msr	pmccfiltr_el0, xzr
	mov	x2, #1
	msr	pmcr_el0, x2
	mov	x2, #(1 << 31)
	msr	pmcntenset_el0, x2
	ret

/* x23 += each of set_debug_pmu's values not as it left them, and 1 if the
 * cycle counter is not past x22 */
check_debug_pmu:
	.macro	still reg, value
	mrs	x2, \reg
	ldr	x3, =\value
	cmp	x2, x3
	cinc	x23, x23, ne
	.endm
	still	dbgbvr0_el1, 0x80001000
	still	dbgbcr0_el1, 0x1e4
	still	dbgwvr0_el1, 0x80002000
	still	dbgwcr0_el1, 0x1fe4
	still	pmselr_el0, 3
	still	pmevtyper0_el0, 0x11
	still	pmcntenset_el0, 0x80000000
	mrs	x2, pmccntr_el0
	cmp	x2, x22
	cinc	x23, x23, ls
	ret

	.balign	8
values:
	.quad	0x1111222233334444	/* TPIDR_EL0 */
	.quad	0x5555666677778888	/* TPIDRRO_EL0 */
	.quad	0x99990000aaaabbbb	/* TPIDR_EL1 */
	.quad	0x00000000c0ffee01	/* CONTEXTIDR_EL1 (32 bits) */
	.quad	0x0000000080fff000	/* TTBR0_EL1 (the MMU stays off) */
	.quad	0x0001000080ffe000	/* TTBR1_EL1, ASID 1 */
	.quad	0x0000000000803510	/* TCR_EL1 */
	.quad	0x00000000004404ff	/* MAIR_EL1 */
	.quad	0x0000000000000800	/* PAR_EL1: F clear, PA 0 */
	.quad	0x0000000080ffff00	/* SP_EL0 */
	.quad	0x0000000080123454	/* ELR_EL1 */
	.quad	0x00000000000003c5	/* SPSR_EL1 */
	.quad	0x0000000000000000	/* CNTKCTL_EL1: no EL0 counter access */
	.quad	0x0000000000001000	/* MDSCR_EL1: TDCC */
	.quad	0x7fffffffffff0000	/* CNTV_CVAL_EL0: far off */
	.quad	0x7ffffffffffe0000	/* CNTP_CVAL_EL0 */
	.quad	0x0000000000000003	/* CNTV_CTL_EL0: enabled, masked */
	.quad	0x0000000000000002	/* CNTP_CTL_EL0: masked */

/* Its own vectors: only the current EL with SP_EL1's synchronous entry is
 * used (it runs at EL1h). */
	.balign	0x800
vectors:
	.space	0x200
	mrs	x9, esr_el1
	str	x9, [x19]		/* 0x7000: ESR_EL1 */
	mrs	x9, far_el1
	str	x9, [x19, #8]		/* 0x7008: FAR_EL1 */
	mrs	x9, esr_el1
	lsr	x9, x9, #26
	cmp	x9, #0x21		/* an instruction abort: back where the jump came from */
	b.eq	2f
	mrs	x9, elr_el1
	add	x9, x9, #4
	msr	elr_el1, x9
	eret
2:	msr	elr_el1, x30
	eret
	.balign	0x80			/* IRQ, current EL with SP_ELx (vectors + 0x280) */
	mrs	x9, icc_iar1_el1
	str	x9, [x19, #24]		/* 0x7018: the INTID */
	msr	cntv_ctl_el0, xzr	/* the timers off (a no-op for the SPI) */
	msr	cntp_ctl_el0, xzr
	isb
	msr	icc_eoir1_el1, x9
	mov	x10, #1
	eret
	.ltorg
