/*
 * A bare-metal test kernel that waits in WFI, built in one of three forms
 * (-DWAKER=...), for `gunyah boot`'s "waiting with nothing to wake it":
 *
 *   WAKER_NONE   CPU 0 waits with the GIC on and only the SPIs the host
 *                raises enabled (interrupt IDs 224 to 255: the RM link's
 *                and the wake-up virqs, boot/layout.py BOOT_RM_LINK), which
 *                it raises only during a call: nothing can wake it, and the
 *                boot ends as halted at once.
 *   WAKER_TIMER  CPU 0 turns the GIC on, arms its virtual timer 100 ms ahead
 *                and waits (interrupts masked: the timer wakes WFI without
 *                being taken); woken, it powers off.
 *   WAKER_CPU    CPU 0 waits with the GIC off; CPU 1 runs for a second, then
 *                turns the distributor on, sends CPU 0 an SGI and turns
 *                itself off. Woken, CPU 0 powers off. (--smp 2)
 *
 * The virt machine's GICv3 (Arm IHI 0069): distributor at GICD_BASE, one
 * redistributor a CPU from GICR_BASE (the boot's layout), the CPU interface
 * in ICC_* system registers; no EL3, so one security state (GICD_CTLR.DS):
 * Group 1 interrupts, enabled by GICD_CTLR.EnableGrp1 and ICC_IGRPEN1_EL1.
 * The virtual timer is PPI 27.
 */
#include "bare.h"

#define WAKER_NONE 0
#define WAKER_TIMER 1
#define WAKER_CPU 2
#ifndef WAKER
#error "build with -DWAKER=WAKER_NONE, WAKER_TIMER or WAKER_CPU"
#endif

#define GICD(off) ((volatile u32 *)(GICD_BASE + (off)))
#define GICR(cpu, off) ((volatile u32 *)(GICR_BASE + (cpu) * GICR_STRIDE + (off)))
#define GICR_SGI(cpu, off) GICR(cpu, GICR_SGI_FRAME + (off))
#define GICD_CTLR 0x0000
#define GICD_CTLR_ON 0x12u  /* ARE, EnableGrp1 */
#define GICD_IGROUPR 0x0080
#define GICD_ISENABLER 0x0100
#define HOST_SPIS_WORD 7  /* GICD_ISENABLER7: IDs 224..255, all the host's */
#define GICR_WAKER 0x0014
#define GICR_WAKER_SLEEP 0x2u  /* ProcessorSleep */
#define GICR_WAKER_ASLEEP 0x4u  /* ChildrenAsleep */
#define GICR_IGROUPR0 0x0080
#define GICR_ISENABLER0 0x0100
#define SGI_WAKE 1
#define PPI_VTIMER 27

BARE_SMP_START(2);

#define sysreg_read(r) ({ u64 v_; __asm__ volatile("mrs %0, " #r : "=r"(v_)); v_; })
#define sysreg_write(r, v) __asm__ volatile("msr " #r ", %0; isb" : : "r"((u64)(v)))

static void wait(void)
{
	__asm__ volatile("dsb sy; wfi" ::: "memory");
}

/* CPU 0's redistributor awake, its SGIs and PPIs Group 1, and its CPU
 * interface passing every priority of Group 1 on. */
static void cpu0_interface_on(void)
{
	*GICR(0, GICR_WAKER) &= ~GICR_WAKER_SLEEP;
	while (*GICR(0, GICR_WAKER) & GICR_WAKER_ASLEEP)
		barrier();
	*GICR_SGI(0, GICR_IGROUPR0) = 0xffffffffu;
	sysreg_write(icc_pmr_el1, 0xff);
	sysreg_write(icc_igrpen1_el1, 1);
}

void cpu_main(u64 index)
{
	if (index == 1) {  /* WAKER_CPU's second CPU */
		u64 until = sysreg_read(cntvct_el0) + sysreg_read(cntfrq_el0);
		while (sysreg_read(cntvct_el0) < until)
			barrier();
		*GICD(GICD_CTLR) = GICD_CTLR_ON;
		/* said first: once woken, CPU 0 powers off, maybe before a line after */
		put("wfi: CPU 1 sends CPU 0 an SGI\n");
		barrier();
		sysreg_write(icc_sgi1r_el1, (u64)SGI_WAKE << 24 | 1);  /* to Aff0 0: CPU 0 */
		barrier();
		psci(PSCI_CPU_OFF, 0, 0, 0);
		return;
	}
	cpu0_interface_on();
	if (WAKER == WAKER_TIMER) {
		*GICR_SGI(0, GICR_ISENABLER0) = 1u << PPI_VTIMER;
		*GICD(GICD_CTLR) = GICD_CTLR_ON;
		sysreg_write(cntv_tval_el0, sysreg_read(cntfrq_el0) / 10);
		sysreg_write(cntv_ctl_el0, 1);  /* enabled, not masked */
	}
	if (WAKER == WAKER_NONE) {
		*GICD(GICD_IGROUPR + 4 * HOST_SPIS_WORD) = 0xffffffffu;
		*GICD(GICD_ISENABLER + 4 * HOST_SPIS_WORD) = 0xffffffffu;
		*GICD(GICD_CTLR) = GICD_CTLR_ON;
	}
	if (WAKER == WAKER_CPU) {  /* the SGI enabled, the distributor off: only CPU 1 */
		*GICR_SGI(0, GICR_ISENABLER0) = 1u << SGI_WAKE;
		psci(PSCI_CPU_ON, 1, (u64)secondary, 1);
	}
	put("wfi: CPU 0 waits\n");
	wait();
	if (WAKER == WAKER_NONE) {  /* woken by nothing: not meant to get here */
		put("wfi: CPU 0 woke with nothing to wake it\n");
		for (;;)
			wait();
	}
	put(WAKER == WAKER_TIMER && (sysreg_read(cntv_ctl_el0) & 4) ? "wfi: the timer woke CPU 0\n"
	    : "wfi: CPU 0 woke\n");
	psci(PSCI_SYSTEM_OFF, 0, 0, 0);
}
