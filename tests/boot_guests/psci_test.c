/*
 * A bare-metal PSCI test kernel after kvm-unit-tests' arm/psci.c, for
 * `gunyah boot --smp 4`: each check prints "psci-test: NAME PASS|FAIL" on
 * the PL011, then "psci-test: SUMMARY N tests, M failures", then the
 * machine powers off (SYSTEM_OFF, exit status 0).
 *
 *   invalid-function   an unknown function ID answers NOT_SUPPORTED
 *   affinity-info-on   AFFINITY_INFO of this CPU is ON
 *   affinity-info-off  AFFINITY_INFO of a CPU never started is OFF
 *   cpu-on             CPUs 1 and 2 both ask CPU_ON for CPU 3 at once:
 *                      exactly one SUCCESS, the other ALREADY_ON or ON_PENDING
 *   cpu-off            CPU 3, on until told, turns itself off: AFFINITY_INFO
 *                      reads OFF
 */
#include "bare.h"

#define PREFIX "psci-test: "

#define NOT_SUPPORTED (-1)
#define ALREADY_ON (-4)
#define ON_PENDING (-5)
#define CPUS 4

BARE_SMP_START(CPUS);
static volatile s64 on_result[CPUS];
static volatile u64 ready[CPUS], go, cpu3_ran, cpu3_off;


static int wait_off(u64 cpu)
{
    for (u64 until = bare_deadline(10); bare_before(until);)
        if (psci(PSCI_AFFINITY_INFO, cpu, 0, 0) == 1)
            return 1;
    return 0;
}

void cpu_main(u64 index)
{
    if (index == 1 || index == 2) {
        ready[index] = 1;
        barrier();
        while (!go)
            barrier();
        on_result[index] = psci(PSCI_CPU_ON, 3, (u64)secondary, 3);
        barrier();
        ready[index] = 2;
        barrier();
        psci(PSCI_CPU_OFF, 0, 0, 0);
    }
    if (index == 3) {  /* stays on until the CPU_ON race is judged */
        cpu3_ran = 1;
        barrier();
        while (!cpu3_off)
            barrier();
        psci(PSCI_CPU_OFF, 0, 0, 0);
    }
    if (index != 0)
        for (;;)
            __asm__ volatile("wfi");

    bare_report(PREFIX, "invalid-function", psci(1337, 0, 0, 0) == NOT_SUPPORTED);
    bare_report(PREFIX, "affinity-info-on", psci(PSCI_AFFINITY_INFO, 0, 0, 0) == 0);
    bare_report(PREFIX, "affinity-info-off", psci(PSCI_AFFINITY_INFO, 1, 0, 0) == 1);

    int started = psci(PSCI_CPU_ON, 1, (u64)secondary, 1) == 0 &&
                  psci(PSCI_CPU_ON, 2, (u64)secondary, 2) == 0;
    while (started && !(ready[1] && ready[2]))
        barrier();
    go = 1;
    barrier();
    while (started && !(ready[1] == 2 && ready[2] == 2))
        barrier();
    s64 a = on_result[1], b = on_result[2];
    int one = (a == 0) + (b == 0) == 1;
    s64 other = a == 0 ? b : a;
    int cpu_on_ok = started && one && (other == ALREADY_ON || other == ON_PENDING);
    if (!cpu_on_ok) {
        put("psci-detail: cpu-on started ");
        put_dec((u64)started);
        put(" results ");
        put_dec((u64)-a);
        put(" ");
        put_dec((u64)-b);
        put(" (negated)\n");
    }
    bare_report(PREFIX, "cpu-on", cpu_on_ok);
    cpu3_off = 1;
    barrier();
    bare_report(PREFIX, "cpu-off", wait_off(3) && cpu3_ran);

    bare_summary_and_off(PREFIX);
}
