/*
 * A bare-metal test kernel that reports its exit status the way
 * kvm-unit-tests does: "7q" written to QEMU's chr-testdev, a virtio console
 * on a virtio-mmio transport, makes QEMU exit with (7 << 1) | 1. Without the
 * device it says so and powers off through PSCI (exit status 0).
 */
#include "bare.h"

#define VIRTIO_MMIO 0x0a000000UL
#define TRANSPORTS 32
#define MAGIC 0x74726976
#define DEVICE_CONSOLE 3
#define STATUS_ACK 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define TX_QUEUE 1      /* port 0's transmit queue */
#define QSIZE 8
#define EXIT_STATUS "7q"

struct desc { u64 addr; u32 len; u16 flags, next; };
struct ring { struct desc desc[QSIZE]; u16 avail_flags, avail_idx, avail[QSIZE]; };
static struct ring queue __attribute__((aligned(4096)));
static unsigned char used[4096] __attribute__((aligned(4096)));
static char message[] = EXIT_STATUS;

BARE_ONE_CPU_START;

static volatile u32 *reg(u64 base, u32 off)
{
    return (volatile u32 *)(base + off);
}

void main(void)
{
    u64 base = 0;
    for (int i = 0; i < TRANSPORTS; i++) {
        u64 b = VIRTIO_MMIO + (u64)i * 0x200;
        if (*reg(b, 0x000) == MAGIC && *reg(b, 0x008) == DEVICE_CONSOLE)
            base = b;
    }
    if (!base) {
        put("testdev-exit: no chr-testdev\n");
        psci(PSCI_SYSTEM_OFF, 0, 0, 0);
        return;
    }
    u32 version = *reg(base, 0x004);
    *reg(base, 0x070) = 0;
    *reg(base, 0x070) = STATUS_ACK | STATUS_DRIVER;
    if (version == 2) {
        *reg(base, 0x024) = 1;      /* features 63:32: VIRTIO_F_VERSION_1 */
        *reg(base, 0x020) = 1;
        *reg(base, 0x024) = 0;
        *reg(base, 0x020) = 0;
        *reg(base, 0x070) = STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK;
    }
    *reg(base, 0x030) = TX_QUEUE;
    *reg(base, 0x038) = QSIZE;
    if (version == 2) {
        *reg(base, 0x080) = (u32)(u64)&queue.desc;
        *reg(base, 0x084) = (u32)((u64)&queue.desc >> 32);
        *reg(base, 0x090) = (u32)(u64)&queue.avail_flags;
        *reg(base, 0x094) = (u32)((u64)&queue.avail_flags >> 32);
        *reg(base, 0x0a0) = (u32)(u64)used;
        *reg(base, 0x0a4) = (u32)((u64)used >> 32);
        *reg(base, 0x044) = 1;
    } else {
        *reg(base, 0x028) = 4096;   /* legacy: the used ring on the next page */
        *reg(base, 0x03c) = 4096;
        *reg(base, 0x040) = (u32)((u64)&queue >> 12);
    }
    *reg(base, 0x070) = STATUS_ACK | STATUS_DRIVER | STATUS_DRIVER_OK |
                        (version == 2 ? STATUS_FEATURES_OK : 0);
    put("testdev-exit: writing " EXIT_STATUS "\n");
    queue.desc[0].addr = (u64)message;
    queue.desc[0].len = sizeof(message) - 1;
    queue.desc[0].flags = 0;
    queue.avail[0] = 0;
    barrier();
    queue.avail_idx = 1;
    barrier();
    *reg(base, 0x050) = TX_QUEUE;
    for (;;)
        __asm__ volatile("wfi");
}
