/*
 * Asks the resource manager for this VM's VMID, as the Linux driver's
 * gunyah_hypercall_msgq_send/_recv would: a VM_GET_VMID request on the send
 * queue (cap 0), then the reply polled from the receive queue (cap 1). X0 at
 * entry: 0 the native form, 1 the SMCCC form. Prints the reply and exits
 * with the VMID, or 100 + what went wrong.
 */
#include "gunyah_guest.h"

#define TX_CAP 0
#define RX_CAP 1
#define VM_GET_VMID 0x56000024U

static unsigned char request[8] = { 0x21, 0x01, 0x34, 0x12, 0x24, 0x00, 0x00, 0x56 };
static unsigned char reply[240];

void _start(u64 mode)
{
	struct smccc_res r = gunyah_msgq_send(TX_CAP, sizeof request, request, GUNYAH_MSGQ_PUSH,
					      (int)mode);
	if (r.a0 != 0)
		semihost_exit(100);
	for (int tries = 0;; tries++) {
		r = gunyah_msgq_recv(RX_CAP, reply, sizeof reply, (int)mode);
		if (r.a0 == 0)
			break;
		if (r.a0 != GUNYAH_ERROR_MSGQUEUE_EMPTY || tries == 1000)
			semihost_exit(101);
	}
	u64 size = r.a1;
	put_str("reply");
	for (u64 i = 0; i < size; i++) {
		put_str(" ");
		put_hex(reply[i]);
	}
	put_str("\n");
	/* type reply, our sequence and ID, RM error 0, then the VMID */
	u32 id = reply[4] | reply[5] << 8 | reply[6] << 16 | (u32)reply[7] << 24;
	u32 err = reply[8] | reply[9] << 8 | reply[10] << 16 | (u32)reply[11] << 24;
	if (size != 16 || reply[0] != 0x21 || (reply[1] & 3) != 2 || reply[2] != 0x34 ||
	    reply[3] != 0x12 || id != VM_GET_VMID || err != 0)
		semihost_exit(102);
	semihost_exit(reply[12] | reply[13] << 8);
}
