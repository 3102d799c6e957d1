/*
 * A bare-metal test kernel that waits in WFI, built in one of three forms
 * (-DWAKER=...), for `gunyah boot`'s "waiting with nothing to wake it":
 *
 *   WAKER_NONE   CPU 0 waits with the GIC on and only the SPIs the host
 *                raises enabled (interrupt IDs 256 to 287: the RM link's
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
 * The virt machine's GICv2 (IHI 0048B): distributor at GICD_BASE, CPU
 * interface at GICC_BASE (the boot's layout); the virtual timer is PPI 27.
 */
#include "bare.h"

#define WAKER_NONE 0
#define WAKER_TIMER 1
#define WAKER_CPU 2
#ifndef WAKER
#error "build with -DWAKER=WAKER_NONE, WAKER_TIMER or WAKER_CPU"
#endif

#define GICD(off) ((volatile u32 *)(GICD_BASE + (off)))
#define GICC(off) ((volatile u32 *)(GICC_BASE + (off)))
#define GICD_CTLR 0x000
#define GICD_ISENABLER0 0x100
#define HOST_SPIS_WORD 8  /* GICD_ISENABLER8: IDs 256..287, all the host's */
#define GICD_SGIR 0xf00
#define GICC_CTLR 0x000
#define GICC_PMR 0x004
#define PPI_VTIMER 27

BARE_SMP_START(2);

#define sysreg_read(r) ({ u64 v_; __asm__ volatile("mrs %0, " #r : "=r"(v_)); v_; })
#define sysreg_write(r, v) __asm__ volatile("msr " #r ", %0; isb" : : "r"((u64)(v)))

static void wait(void)
{
	__asm__ volatile("dsb sy; wfi" ::: "memory");
}

void cpu_main(u64 index)
{
	if (index == 1) {  /* WAKER_CPU's second CPU */
		u64 until = sysreg_read(cntvct_el0) + sysreg_read(cntfrq_el0);
		while (sysreg_read(cntvct_el0) < until)
			barrier();
		*GICD(GICD_CTLR) = 1;
		/* said first: once woken, CPU 0 powers off, maybe before a line after */
		put("wfi: CPU 1 sends CPU 0 an SGI\n");
		barrier();
		*GICD(GICD_SGIR) = (1u << 16) | 1;  /* SGI 1 to CPU 0 */
		barrier();
		psci(PSCI_CPU_OFF, 0, 0, 0);
		return;
	}
	*GICC(GICC_PMR) = 0xff;  /* this CPU's interface passes every priority on */
	*GICC(GICC_CTLR) = 1;
	if (WAKER == WAKER_TIMER) {
		*GICD(GICD_ISENABLER0) = 1u << PPI_VTIMER;
		*GICD(GICD_CTLR) = 1;
		sysreg_write(cntv_tval_el0, sysreg_read(cntfrq_el0) / 10);
		sysreg_write(cntv_ctl_el0, 1);  /* enabled, not masked */
	}
	if (WAKER == WAKER_NONE) {
		*GICD(GICD_ISENABLER0 + 4 * HOST_SPIS_WORD) = 0xffffffffu;
		*GICD(GICD_CTLR) = 1;
	}
	if (WAKER == WAKER_CPU)
		psci(PSCI_CPU_ON, 1, (u64)secondary, 1);
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
