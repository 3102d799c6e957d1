// SPDX-License-Identifier: GPL-2.0-only
/*
 * gunyah_vm: /dev/gunyah, a Gunyah VM manager with the ioctls of the Linux
 * series' v14 (Android's 6.1 common kernel: include/uapi/linux/gunyah.h,
 * drivers/virt/gunyah/), for a primary VM that runs a VMM.
 *
 * GH_CREATE_VM asks the RM for a VM (VM_ALLOCATE) and answers a VM fd. On it:
 * GH_VM_SET_USER_MEM_REGION pins the user's pages (shared with the VM at
 * start; GH_VM_ANDROID_LEND_USER_MEM lends them), GH_VM_SET_DTB_CONFIG names
 * the device tree's place in a region, GH_VM_ADD_FUNCTION with GH_FN_VCPU
 * answers a vCPU fd whose page (mmap) is the struct gh_vcpu_run, and
 * GH_VM_START (or the first GH_VCPU_RUN) shares the memory, then
 * VM_CONFIG_IMAGE, VM_INIT, VM_GET_HYP_RESOURCES (the vCPUs' caps) and
 * VM_START (docs/real-gunyah.md sections 11 and 16). GH_VM_ADD_FUNCTION with
 * GH_FN_IRQFD binds an eventfd to the doorbell of its label, as the series'
 * gunyah_irqfd.c does: each signal of the eventfd rings the doorbell
 * (doorbell_send with GH_BELL_NONBLOCK on the owner's cap, which
 * VM_GET_HYP_RESOURCES gives as a BELL_TX entry of that label) and the
 * hypervisor raises the doorbell's virq in the VM; GH_IRQFD_LEVEL makes the
 * doorbell acknowledge itself (doorbell_mask: enable NONBLOCK, ack all);
 * GH_VM_REMOVE_FUNCTION with the same argument unbinds it. GH_FN_IOEVENTFD
 * binds an eventfd to an MMIO address, as the series' gunyah_ioeventfd.c
 * does: a VMMIO write it matches signals the eventfd and the vCPU runs on
 * inside GH_VCPU_RUN (docs/boot.md section 18). GH_VCPU_RUN calls
 * vcpu_run (its SMCCC form, arguments from x1) until the vCPU needs its
 * VMM: a VMMIO access (GH_VCPU_EXIT_MMIO; a read's value comes back from
 * the run page on the next GH_VCPU_RUN) or its end (GH_VCPU_EXIT_STATUS,
 * with the VM_EXITED notification's exit type and reason). The last close
 * tears the VM down: VM_STOP with force while it runs, VM_RESET, VM_STATUS
 * RESET awaited, MEM_RECLAIM of each parcel, VM_DEALLOCATE, the pages unpinned.
 *
 * The RM is reached in one place, rm_pump(), which takes one message off
 * the receive queue under rm.lock and hands it out: the awaited reply to
 * rm_call, each notification to the VM it names. Nothing polls: the RM node
 * of the device tree (its compatible) names the queues' two interrupts,
 * rm_pump receives only after the receive interrupt came or the last
 * receive said more were waiting, and whoever waits for the RM sleeps on
 * rm.wq until the receive interrupt or another waiter's news wakes it; a
 * send the queue refuses as full waits for the send interrupt. A vCPU that
 * waits (vcpu_run's EXPECTS_WAKEUP) sleeps until its wake-up interrupt,
 * the virq VM_GET_HYP_RESOURCES names, mapped through the GIC as an SPI.
 * The first receive, at load, takes whatever an earlier client left (its
 * interrupt, long gone, is cleared then). The counters (module parameters
 * rx_interrupts, tx_interrupts, empty_receives; a line at each VM's
 * teardown with the wake-up interrupts too) show it: every later receive
 * that finds the queue empty is one an interrupt or a receive promised.
 *
 * Numbers come from gunyah_abi.h and gunyah_uapi.h, written from the
 * project's ABI tables by its module builder.
 */
#include <linux/anon_inodes.h>
#include <linux/arm-smccc.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/irqdomain.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/of.h>
#include <linux/of_irq.h>
#include <linux/poll.h>
#include <linux/rwsem.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <dt-bindings/interrupt-controller/arm-gic.h>

#include "gunyah_abi.h"
#include "gunyah_uapi.h"

#define RM_PAYLOAD (GUNYAH_RM_MESSAGE_SIZE - GUNYAH_RM_HEADER_SIZE)
#define RM_MAX_MSG (RM_PAYLOAD * (GUNYAH_RM_MAX_FRAGMENTS + 1))
#define RM_TIMEOUT (5 * HZ)
#define RESET_TIMEOUT (5 * HZ)
#define EXITED_TIMEOUT (2 * HZ)
#define WAKE_TIMEOUT HZ /* a vCPU that waits looks again after this long all the same */
#define FIRST_SPI 32
#define LAST_SPI 1019 /* the series' arch_gh_fill_irq_fwspec_params: a virq is an SPI */

#define MAX_REGIONS 16
#define MAX_VCPUS 8
#define MAX_REGION_PAGES (1UL << 18) /* 1 GiB of 4 KiB pages in one region */
#define MAX_SGL 512 /* a parcel's SGL entries: a MEM_SHARE of 29 fragments */
#define MAX_RESOURCES 64
#define MAX_IRQFDS 64 /* a VM's: more is ENOSPC (the series has no bound) */
#define MAX_IOEVENTFDS 64 /* a VM's: more is ENOSPC (the series has no bound) */

/* ---- the RM's queues ---------------------------------------------------- */

static struct {
	struct mutex lock; /* the queues, the pending reply, and every VM's rm_* fields */
	u16 seq;
	u8 *msg; /* one message, sent or received */
	/* the reply rm_call awaits */
	bool waiting, done;
	u16 want_seq;
	u32 want_id;
	u8 *reply;
	size_t reply_len, reply_cap;
	int fragments_left;
	struct list_head vms;
	/* the queues' interrupts */
	struct device_node *node, *gic;
	int tx_irq, rx_irq;
	wait_queue_head_t wq; /* woken by the receive and send interrupts, and by news */
	unsigned long ready;  /* RM_RX_READY, RM_TX_READY: an interrupt came since the last look */
	bool more;	      /* the last receive said the queue holds more (or none yet was made) */
	bool looked;	      /* a receive was made: the first one, at load, may find nothing */
	unsigned long news;   /* messages handed out so far: another waiter's reply came */
} rm;

enum { RM_RX_READY, RM_TX_READY };

static unsigned int rx_interrupts, tx_interrupts, empty_receives;
static atomic_t bell_sends = ATOMIC_INIT(0);
static atomic_t io_signals = ATOMIC_INIT(0);
static atomic_t wake_count = ATOMIC_INIT(0);
module_param(rx_interrupts, uint, 0444);
MODULE_PARM_DESC(rx_interrupts, "the RM receive queue's interrupts taken");
module_param(tx_interrupts, uint, 0444);
MODULE_PARM_DESC(tx_interrupts, "the RM send queue's interrupts taken");
module_param(empty_receives, uint, 0444);
MODULE_PARM_DESC(empty_receives, "receives from the RM that found the queue empty");

static unsigned int rm_bench;
module_param(rm_bench, uint, 0444);
MODULE_PARM_DESC(rm_bench, "at load, time this many VM_GET_VMID round trips (at most 10000)");

static irqreturn_t rm_rx_interrupt(int irq, void *data)
{
	rx_interrupts++; /* one handler of an IRQ runs at a time */
	set_bit(RM_RX_READY, &rm.ready);
	wake_up_all(&rm.wq);
	return IRQ_HANDLED;
}

static irqreturn_t rm_tx_interrupt(int irq, void *data)
{
	tx_interrupts++;
	set_bit(RM_TX_READY, &rm.ready);
	wake_up_all(&rm.wq);
	return IRQ_HANDLED;
}

/* The jiffies left until `until`, at least 1. */
static long rm_left(unsigned long until)
{
	long left = (long)(until - jiffies);

	return left > 0 ? left : 1;
}

/* Something to look at since `seen` (rm.news read under rm.lock). */
static bool rm_news(unsigned long seen)
{
	return test_bit(RM_RX_READY, &rm.ready) || READ_ONCE(rm.news) != seen;
}

static u64 le_get(const u8 *p, int bytes)
{
	u64 v = 0;

	while (bytes--)
		v = v << 8 | p[bytes];
	return v;
}

static void le_put(u8 *p, u64 v, int bytes)
{
	while (bytes--) {
		*p++ = v & 0xff;
		v >>= 8;
	}
}

/* The series' gh_rm_error_remap. */
static int rm_errno(u32 error)
{
	switch (error) {
	case 0:
		return 0;
	case GUNYAH_RM_ERROR_NOMEM:
		return -ENOMEM;
	case GUNYAH_RM_ERROR_NORESOURCE:
		return -ENODEV;
	case GUNYAH_RM_ERROR_DENIED:
		return -EPERM;
	case GUNYAH_RM_ERROR_BUSY:
		return -EBUSY;
	case GUNYAH_RM_ERROR_UNIMPLEMENTED:
		return -EOPNOTSUPP;
	default:
		return -EINVAL;
	}
}

struct gvm;
static void gvm_notified(struct gvm *vm, u32 id, const u8 *p, size_t len);
static u16 gvm_vmid(struct gvm *vm);
static struct gvm *gvm_of_node(struct list_head *node);

static void rm_notification(u32 id, const u8 *p, size_t len)
{
	struct list_head *node;

	if (len < 2)
		return;
	list_for_each(node, &rm.vms) {
		struct gvm *vm = gvm_of_node(node);

		if (id == GUNYAH_RM_NOTIFY_MEM_RELEASED ? len >= 6 && le_get(p + 4, 2) == gvm_vmid(vm)
							: le_get(p, 2) == gvm_vmid(vm))
			gvm_notified(vm, id, p, len);
	}
}

static void rm_hand_out(size_t len);

/*
 * Receive one message and hand it out, where the receive interrupt came or
 * the last receive said more were waiting. 1: a message was taken; 0: none
 * is known to wait; negative: the queue failed. Under rm.lock.
 */
static int rm_pump(void)
{
	struct arm_smccc_res res;

	if (!test_and_clear_bit(RM_RX_READY, &rm.ready) && !rm.more)
		return 0;
	arm_smccc_1_1_hvc(GUNYAH_MSGQ_RECV, GUNYAH_RM_RX_CAP, (uintptr_t)rm.msg,
			  GUNYAH_RM_MESSAGE_SIZE, 0, 0, &res);
	if (res.a0 == GUNYAH_ERROR_MSGQUEUE_EMPTY) {
		if (rm.looked) /* an interrupt or a receive said a message waited */
			empty_receives++;
		rm.looked = true;
		rm.more = false;
		return 0;
	}
	rm.looked = true;
	if (res.a0)
		return -EIO;
	rm.more = res.a2 != 0; /* not_empty */
	rm_hand_out(min_t(size_t, res.a1, GUNYAH_RM_MESSAGE_SIZE));
	WRITE_ONCE(rm.news, rm.news + 1);
	wake_up_all(&rm.wq); /* another waiter's reply or notification may be in */
	return 1;
}

/* The message in rm.msg to whoever waits for it; under rm.lock. */
static void rm_hand_out(size_t len)
{
	size_t body;
	u8 type, fragments;
	u32 id;
	u16 seq;

	if (len < GUNYAH_RM_HEADER_SIZE || rm.msg[0] != GUNYAH_RM_VERSION_BYTE)
		return; /* not a message of this RPC: dropped */
	type = rm.msg[1] & 3;
	fragments = rm.msg[1] >> 2;
	seq = le_get(rm.msg + 2, 2);
	id = le_get(rm.msg + 4, 4);
	body = len - GUNYAH_RM_HEADER_SIZE;
	if (type == GUNYAH_RM_TYPE_NOTIFICATION) {
		if (!fragments) /* a long notification is none we read: dropped */
			rm_notification(id, rm.msg + GUNYAH_RM_HEADER_SIZE, body);
		return;
	}
	if (!rm.waiting || rm.done || seq != rm.want_seq || id != rm.want_id)
		return;
	if (type == GUNYAH_RM_TYPE_REPLY && rm.fragments_left < 0) {
		rm.fragments_left = fragments;
		rm.reply_len = 0;
	} else if (type != GUNYAH_RM_TYPE_CONTINUATION || rm.fragments_left <= 0) {
		return;
	} else {
		rm.fragments_left--;
	}
	if (rm.reply_len < rm.reply_cap)
		memcpy(rm.reply + rm.reply_len, rm.msg + GUNYAH_RM_HEADER_SIZE,
		       min(body, rm.reply_cap - rm.reply_len));
	rm.reply_len += body;
	rm.done = rm.fragments_left == 0;
}

/* Every waiting message handed out; under rm.lock. */
static void rm_drain(void)
{
	int n;

	do
		n = rm_pump();
	while (n > 0);
}

static int rm_send(u32 id, const u8 *payload, size_t len)
{
	size_t fragments = len ? (len - 1) / RM_PAYLOAD : 0, i, at = 0;
	struct arm_smccc_res res;
	unsigned long until;

	rm.seq++;
	for (i = 0; i <= fragments; i++) {
		size_t part = min_t(size_t, len - at, RM_PAYLOAD);

		rm.msg[0] = GUNYAH_RM_VERSION_BYTE;
		/* every message of a request counts its continuations, as Linux's RM client does */
		rm.msg[1] = (i ? GUNYAH_RM_TYPE_CONTINUATION : GUNYAH_RM_TYPE_REQUEST) |
			    (u8)(fragments << 2);
		le_put(rm.msg + 2, rm.seq, 2);
		le_put(rm.msg + 4, id, 4);
		memcpy(rm.msg + GUNYAH_RM_HEADER_SIZE, payload + at, part);
		until = jiffies + RM_TIMEOUT;
		for (;;) {
			arm_smccc_1_1_hvc(GUNYAH_MSGQ_SEND, GUNYAH_RM_TX_CAP,
					  GUNYAH_RM_HEADER_SIZE + part, (uintptr_t)rm.msg,
					  GUNYAH_MSGQ_PUSH, 0, &res);
			if (res.a0 != GUNYAH_ERROR_MSGQUEUE_FULL)
				break;
			if (time_after(jiffies, until))
				return -ETIMEDOUT;
			/* full: until a receive brings it down to its not-full threshold */
			wait_event_timeout(rm.wq, test_and_clear_bit(RM_TX_READY, &rm.ready),
					   rm_left(until));
		}
		if (res.a0)
			return -EIO;
		at += part;
	}
	return 0;
}

/*
 * One request and its reply. The RM's error becomes an errno; the reply's
 * payload after the error word goes to `out` (up to `cap` bytes), its
 * length to *out_len. Notifications that come meanwhile are handed out.
 */
static int rm_call(u32 id, const void *payload, size_t len, void *out, size_t cap,
		   size_t *out_len)
{
	u8 *reply = kmalloc(cap + 4, GFP_KERNEL);
	unsigned long until = jiffies + RM_TIMEOUT;
	int ret;

	if (!reply)
		return -ENOMEM;
	if (len > RM_MAX_MSG) {
		kfree(reply);
		return -E2BIG;
	}
	mutex_lock(&rm.lock);
	rm_drain();
	ret = rm_send(id, payload, len);
	if (ret)
		goto out;
	rm.waiting = true;
	rm.done = false;
	rm.want_seq = rm.seq;
	rm.want_id = id;
	rm.reply = reply;
	rm.reply_cap = cap + 4;
	rm.reply_len = 0;
	rm.fragments_left = -1;
	while (!rm.done) {
		ret = rm_pump();
		if (ret < 0)
			break;
		if (ret == 0) {
			unsigned long seen = rm.news;

			if (time_after(jiffies, until)) {
				pr_info("gunyah-vm: RM request %#x: no reply\n", id);
				ret = -ETIMEDOUT;
				break;
			}
			mutex_unlock(&rm.lock);
			wait_event_timeout(rm.wq, rm_news(seen), rm_left(until));
			mutex_lock(&rm.lock);
		}
	}
	rm.waiting = false;
	if (!rm.done)
		goto out;
	if (rm.reply_len < 4) {
		ret = -EBADMSG;
		goto out;
	}
	ret = rm_errno(le_get(reply, 4));
	if (ret)
		pr_info("gunyah-vm: RM request %#x answered error %#llx\n", id, le_get(reply, 4));
	if (out)
		memcpy(out, reply + 4, min(cap, rm.reply_len - 4));
	if (out_len)
		*out_len = rm.reply_len - 4;
out:
	mutex_unlock(&rm.lock);
	kfree(reply);
	return ret;
}

/* A request whose payload is the VMID and a zero u16 and whose reply has none. */
static int rm_vmid_call(u32 id, u16 vmid)
{
	u8 p[4] = { 0 };

	le_put(p, vmid, 2);
	return rm_call(id, p, sizeof(p), NULL, 0, NULL);
}

/* ---- VMs ---------------------------------------------------------------- */

struct gvm_region {
	u32 label, flags;
	u64 gpa, size, uaddr;
	unsigned long npages;
	struct page **pages;
	bool lend, parcel;
	u32 handle;
};

enum gvm_stage { GVM_NEW, GVM_CONFIGURED, GVM_STARTED, GVM_FAILED };

struct gvm {
	struct kref ref;
	struct list_head node; /* rm.vms */
	struct mutex lock;     /* everything below but the rm_* fields */
	struct mm_struct *mm;
	u16 vmid;
	enum gvm_stage stage;
	struct gvm_region regions[MAX_REGIONS];
	unsigned int n_regions;
	bool dtb_set;
	u64 dtb_gpa, dtb_size;
	u32 vcpu_ids;		  /* bound GH_FN_VCPU ids */
	u64 vcpu_caps[MAX_VCPUS]; /* from VM_GET_HYP_RESOURCES */
	u32 vcpu_capped;
	struct gvm_wake {
		struct gvm *vm;
		unsigned int index;
		unsigned int irq; /* vcpu_run's wake-up interrupt; 0: none */
	} wakes[MAX_VCPUS];
	unsigned long woken; /* a bit a vCPU: its wake-up interrupt came */
	wait_queue_head_t wake_wq;
	struct list_head irqfds; /* struct gvm_irqfd, under lock */
	unsigned int n_irqfds;
	struct rw_semaphore io_lock; /* ioeventfds: written under lock too, read by vCPUs */
	struct list_head ioeventfds; /* struct gvm_ioeventfd */
	unsigned int n_ioeventfds;
	struct gvm_bell {
		u32 label;
		u64 cap;
	} bells[MAX_RESOURCES]; /* the owner's doorbell caps, from VM_GET_HYP_RESOURCES */
	unsigned int n_bells;
	/* from the RM's notifications, under rm.lock */
	u8 rm_state;
	bool rm_exited;
	u16 rm_exit_type;
	u32 rm_reason_size;
	u8 rm_reason[GH_VM_MAX_EXIT_REASON_SIZE];
};

static u16 gvm_vmid(struct gvm *vm)
{
	return vm->vmid;
}

static struct gvm *gvm_of_node(struct list_head *node)
{
	return list_entry(node, struct gvm, node);
}

static void gvm_notified(struct gvm *vm, u32 id, const u8 *p, size_t len)
{
	if (id == GUNYAH_RM_NOTIFY_VM_STATUS && len >= 5) {
		vm->rm_state = p[4];
	} else if (id == GUNYAH_RM_NOTIFY_VM_EXITED && len >= 8) {
		size_t n = min_t(size_t, le_get(p + 4, 4), len - 8);

		vm->rm_exit_type = le_get(p + 2, 2);
		vm->rm_reason_size = min_t(size_t, n, sizeof(vm->rm_reason));
		memcpy(vm->rm_reason, p + 8, vm->rm_reason_size);
		vm->rm_exited = true;
	}
}

/* Wait for the RM until cond(vm) holds (under rm.lock) or `timeout` passes
 * (0: look once), sleeping between looks until there is news. */
static bool gvm_wait(struct gvm *vm, bool (*cond)(struct gvm *), unsigned long timeout,
		     bool interruptible)
{
	unsigned long until = jiffies + timeout, seen;
	bool ok;

	for (;;) {
		mutex_lock(&rm.lock);
		rm_drain();
		ok = cond(vm);
		seen = rm.news;
		mutex_unlock(&rm.lock);
		if (ok || !timeout || time_after_eq(jiffies, until) ||
		    (interruptible && signal_pending(current)))
			return ok;
		if (interruptible)
			wait_event_interruptible_timeout(rm.wq, rm_news(seen), rm_left(until));
		else
			wait_event_timeout(rm.wq, rm_news(seen), rm_left(until));
	}
}

static bool gvm_exited(struct gvm *vm)
{
	return vm->rm_exited;
}

static bool gvm_reset(struct gvm *vm)
{
	return vm->rm_state == GUNYAH_VM_STATE_RESET;
}

static irqreturn_t gvm_wake_interrupt(int irq, void *data)
{
	struct gvm_wake *w = data;

	atomic_inc(&wake_count);
	set_bit(w->index, &w->vm->woken);
	wake_up_all(&w->vm->wake_wq);
	wake_up_all(&rm.wq); /* a vCPU not started yet waits there too (gvcpu_wait_off) */
	return IRQ_HANDLED;
}

/* vCPU `index`'s wake-up virq (an interrupt ID) as a Linux IRQ through the
 * GIC's fwspec, as the series maps it, and requested; 0 where it cannot be. */
static void gvm_bind_wake(struct gvm *vm, unsigned int index, u32 virq)
{
	struct gvm_wake *w = &vm->wakes[index];
	struct irq_fwspec fwspec = {
		.fwnode = of_node_to_fwnode(rm.gic),
		.param_count = 3,
		.param = { GIC_SPI, virq - FIRST_SPI, IRQ_TYPE_EDGE_RISING },
	};
	unsigned int irq;

	if (w->irq || virq < FIRST_SPI || virq > LAST_SPI)
		return;
	irq = irq_create_fwspec_mapping(&fwspec);
	if (!irq)
		return;
	w->vm = vm;
	w->index = index;
	if (request_irq(irq, gvm_wake_interrupt, 0, "gunyah-vcpu-wake", w)) {
		irq_dispose_mapping(irq);
		return;
	}
	w->irq = irq;
}

static void gvm_unbind_wakes(struct gvm *vm)
{
	unsigned int i;

	for (i = 0; i < MAX_VCPUS; i++) {
		if (vm->wakes[i].irq) {
			free_irq(vm->wakes[i].irq, &vm->wakes[i]);
			irq_dispose_mapping(vm->wakes[i].irq);
			vm->wakes[i].irq = 0;
		}
	}
}

static void gvm_unpin(struct gvm_region *r)
{
	if (r->pages) {
		unpin_user_pages(r->pages, r->npages);
		kvfree(r->pages);
		r->pages = NULL;
	}
}

/* The page runs of a region as MEM_SHARE's SGL entries; their count. */
static unsigned int gvm_runs(const struct gvm_region *r, u8 *sgl)
{
	unsigned int n = 0;
	unsigned long i;
	u64 start = 0, size = 0;

	for (i = 0; i < r->npages; i++) {
		u64 pa = page_to_phys(r->pages[i]);

		if (size && pa == start + size) {
			size += PAGE_SIZE;
			continue;
		}
		if (size && sgl) {
			le_put(sgl + 16 * (n - 1), start, 8);
			le_put(sgl + 16 * (n - 1) + 8, size, 8);
		}
		start = pa;
		size = PAGE_SIZE;
		n++;
	}
	if (size && sgl) {
		le_put(sgl + 16 * (n - 1), start, 8);
		le_put(sgl + 16 * (n - 1) + 8, size, 8);
	}
	return n;
}

/* MEM_SHARE (or MEM_LEND) one region with the VM: its handle. */
static int gvm_share(struct gvm *vm, struct gvm_region *r)
{
	unsigned int runs = gvm_runs(r, NULL), acls = r->lend ? 1 : 2;
	size_t len = 8 + 4 + 4 * acls + 4 + 16 * runs + 4;
	u8 rights = 0, *p, *at;
	u8 handle[4];
	size_t got = 0;
	int ret;

	if (r->flags & GH_MEM_ALLOW_READ)
		rights |= 4;
	if (r->flags & GH_MEM_ALLOW_WRITE)
		rights |= 2;
	if (r->flags & GH_MEM_ALLOW_EXEC)
		rights |= 1;
	p = kzalloc(len, GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	le_put(p + 4, r->label, 4); /* mem_type 0 (normal), flags 0 */
	at = p + 8;
	le_put(at, acls, 2);
	at += 4;
	le_put(at, vm->vmid, 2);
	at[2] = rights;
	at += 4;
	if (!r->lend) { /* the host keeps every right it had (the series does so) */
		u8 self[4];

		ret = rm_call(GUNYAH_RM_VM_GET_VMID, NULL, 0, self, sizeof(self), &got);
		if (!ret && got < 4)
			ret = -EBADMSG;
		if (ret) {
			kfree(p);
			return ret;
		}
		le_put(at, le_get(self, 2), 2);
		at[2] = 7;
		at += 4;
	}
	le_put(at, runs, 2);
	at += 4;
	gvm_runs(r, at);
	at += 16 * runs; /* then no attributes: u16 0, u16 0 */
	ret = rm_call(r->lend ? GUNYAH_RM_MEM_LEND : GUNYAH_RM_MEM_SHARE, p, len, handle,
		      sizeof(handle), &got);
	kfree(p);
	if (!ret && got < 4)
		ret = -EBADMSG;
	if (!ret) {
		r->handle = le_get(handle, 4);
		r->parcel = true;
	}
	return ret;
}

/* One GH_FN_IRQFD: its argument as given (GH_VM_REMOVE_FUNCTION compares it
 * whole), its eventfd, and the doorbell cap once the VM's resources name it. */
struct gvm_irqfd {
	struct list_head node;
	struct gh_fn_irqfd_arg arg;
	struct eventfd_ctx *ctx;
	wait_queue_entry_t wait;
	poll_table pt;
	u64 cap;
	bool capped; /* cap is set: stored with release, read with acquire */
};

/* The eventfd was signalled (its wait queue's lock held, interrupts off):
 * ring the doorbell, as the series' irqfd_wakeup does. */
static int gvm_irqfd_wakeup(wait_queue_entry_t *wait, unsigned int mode, int sync, void *key)
{
	struct gvm_irqfd *irqfd = container_of(wait, struct gvm_irqfd, wait);
	struct arm_smccc_res res;

	if (!(key_to_poll(key) & EPOLLIN))
		return 0;
	if (!smp_load_acquire(&irqfd->capped)) {
		pr_err_ratelimited("gunyah-vm: premature injection of interrupt %u\n", irqfd->arg.label);
		return 0;
	}
	arm_smccc_1_1_hvc(GUNYAH_BELL_SEND, irqfd->cap, GUNYAH_BELL_NONBLOCK, 0, &res);
	if (res.a0)
		pr_err_ratelimited("gunyah-vm: failed to inject interrupt %u: %ld\n",
				   irqfd->arg.label, (long)res.a0);
	else
		atomic_inc(&bell_sends);
	return 0;
}

static void gvm_irqfd_queue(struct file *file, wait_queue_head_t *wqh, poll_table *pt)
{
	struct gvm_irqfd *irqfd = container_of(pt, struct gvm_irqfd, pt);

	add_wait_queue(wqh, &irqfd->wait);
}

/* The doorbell cap of the irqfd's label, if the RM gave one (the first: the
 * series' populate takes one resource a ticket); GH_IRQFD_LEVEL's masks set.
 * Under vm->lock. */
static void gvm_irqfd_populate(struct gvm *vm, struct gvm_irqfd *irqfd)
{
	struct arm_smccc_res res;
	unsigned int i;

	if (irqfd->capped)
		return;
	for (i = 0; i < vm->n_bells; i++) {
		if (vm->bells[i].label != irqfd->arg.label)
			continue;
		irqfd->cap = vm->bells[i].cap;
		if (irqfd->arg.flags & GH_IRQFD_LEVEL) {
			arm_smccc_1_1_hvc(GUNYAH_BELL_MASK, irqfd->cap, GUNYAH_BELL_NONBLOCK, ~0ULL, 0,
					  &res);
			if (res.a0)
				pr_warn("gunyah-vm: irq %u couldn't be set as level triggered\n",
					irqfd->arg.label);
		}
		smp_store_release(&irqfd->capped, true);
		return;
	}
}

/* Unbound: off the eventfd's wait queue (whether or not it ever rang: the
 * series leaves an irqfd that never got its doorbell on the queue), freed.
 * Under vm->lock. */
static void gvm_irqfd_free(struct gvm *vm, struct gvm_irqfd *irqfd)
{
	u64 cnt;

	eventfd_ctx_remove_wait_queue(irqfd->ctx, &irqfd->wait, &cnt);
	eventfd_ctx_put(irqfd->ctx);
	list_del(&irqfd->node);
	vm->n_irqfds--;
	kfree(irqfd);
}

/* A function's argument into `arg`, as the series takes it: copied in whole
 * (gh_vm_add_function: EFAULT), then its size checked (each function's bind:
 * EINVAL). d->arg_size is at most GH_FN_MAX_ARG_SIZE. */
static int gvm_fn_arg(const struct gh_fn_desc *d, void *arg, size_t size)
{
	u8 buf[GH_FN_MAX_ARG_SIZE];

	if (d->arg_size && copy_from_user(buf, u64_to_user_ptr(d->arg), d->arg_size))
		return -EFAULT;
	if (d->arg_size != size)
		return -EINVAL;
	memcpy(arg, buf, size);
	return 0;
}

/* GH_VM_ADD_FUNCTION of GH_FN_IRQFD: the series' checks in its order (the
 * argument copied in, its size, reserved flags, the fd, an eventfd, one irqfd
 * a label). */
static long gvm_add_irqfd(struct gvm *vm, const struct gh_fn_desc *d)
{
	struct gh_fn_irqfd_arg a;
	struct gvm_irqfd *irqfd, *iter;
	struct eventfd_ctx *ctx;
	__poll_t events;
	struct fd f;
	long ret = gvm_fn_arg(d, &a, sizeof(a));

	if (ret)
		return ret;
	if (a.flags & ~GH_IRQFD_LEVEL)
		return -EINVAL; /* the series: other bits reserved */
	irqfd = kzalloc(sizeof(*irqfd), GFP_KERNEL);
	if (!irqfd)
		return -ENOMEM;
	f = fdget(a.fd);
	if (!f.file) {
		kfree(irqfd);
		return -EBADF;
	}
	ctx = eventfd_ctx_fileget(f.file);
	if (IS_ERR(ctx)) {
		ret = PTR_ERR(ctx);
		goto out;
	}
	irqfd->arg = a;
	irqfd->ctx = ctx;
	init_waitqueue_func_entry(&irqfd->wait, gvm_irqfd_wakeup);
	init_poll_funcptr(&irqfd->pt, gvm_irqfd_queue);
	mutex_lock(&vm->lock);
	list_for_each_entry(iter, &vm->irqfds, node) {
		if (iter->arg.label == a.label) /* the series' resource ticket: one a label */
			ret = -EEXIST;
	}
	if (!ret && vm->n_irqfds >= MAX_IRQFDS)
		ret = -ENOSPC;
	if (ret) {
		mutex_unlock(&vm->lock);
		eventfd_ctx_put(ctx);
		goto out;
	}
	list_add_tail(&irqfd->node, &vm->irqfds);
	vm->n_irqfds++;
	gvm_irqfd_populate(vm, irqfd);
	events = vfs_poll(f.file, &irqfd->pt);
	mutex_unlock(&vm->lock);
	if (events & EPOLLIN)
		pr_warn("gunyah-vm: premature injection of interrupt %u\n", a.label);
	fdput(f);
	return 0;
out:
	fdput(f);
	kfree(irqfd);
	return ret;
}

/*
 * One GH_FN_IOEVENTFD: a VM's MMIO write that matches it signals its eventfd
 * inside GH_VCPU_RUN, and the vCPU goes on without an exit to the VMM (the
 * series' gunyah_ioeventfd.c, vm_mgr.c gh_vm_mmio_write, gunyah_vcpu.c
 * gh_handle_mmio). Its handler keeps what the series' gh_ioeventfd_bind
 * keeps: the address; with GH_IOEVENTFD_FLAGS_DATAMATCH the length and the
 * value; without it length 0, which matches any length and any value
 * (docs/boot.md section 18).
 */
struct gvm_ioeventfd {
	struct list_head node;
	struct gh_fn_ioeventfd_arg arg; /* as given: GH_VM_REMOVE_FUNCTION compares it whole */
	struct eventfd_ctx *ctx;
	u32 len;	/* 0: any length */
	bool datamatch;
	u64 data;	/* with datamatch: the value a write must have */
};

/*
 * Whether a handler (addr, len, datamatch, data) and another, or a write,
 * are the same to the series: v14's _gh_vm_io_handler_compare (vm_mgr.c)
 * answering 0. The addresses are equal; then a length 0 on one side and not
 * the other is a match, else the lengths are equal; then a datamatch flag on
 * one side and not the other is a match, else the values are equal. A
 * write's key has the flag and the value vcpu_run gave (the whole register:
 * gh_vm_mgr_find_io_hdlr). At one address the series' rb-tree holds either
 * one handler of length 0 or handlers of distinct lengths and values, all
 * with the flag, so at most one matches a write and a search of a list finds
 * what the tree's does.
 */
static bool gvm_io_same(u64 addr, u32 len, bool datamatch, u64 data,
			const struct gvm_ioeventfd *h)
{
	if (addr != h->arg.addr)
		return false;
	if (!len != !h->len)
		return true;
	if (len != h->len)
		return false;
	return datamatch != h->datamatch || data == h->data;
}

/* A vCPU's MMIO write: the eventfd of the handler it matches signalled;
 * false where none matches (the write goes to the VMM). */
static bool gvm_io_write(struct gvm *vm, u64 addr, u64 len, u64 value)
{
	struct gvm_ioeventfd *h;
	bool found = false;

	down_read(&vm->io_lock);
	list_for_each_entry(h, &vm->ioeventfds, node) {
		if (gvm_io_same(addr, min_t(u64, len, sizeof(u64)), true, value, h)) {
			eventfd_signal(h->ctx, 1);
			atomic_inc(&io_signals);
			found = true;
			break;
		}
	}
	up_read(&vm->io_lock);
	return found;
}

/* Unbound: its eventfd put, freed. Under vm->lock and io_lock (write). */
static void gvm_ioeventfd_free(struct gvm *vm, struct gvm_ioeventfd *h)
{
	eventfd_ctx_put(h->ctx);
	list_del(&h->node);
	vm->n_ioeventfds--;
	kfree(h);
}

/* GH_VM_ADD_FUNCTION of GH_FN_IOEVENTFD: the series' checks in its order
 * (gh_ioeventfd_bind, gh_vm_add_io_handler): the argument copied in, its
 * size, reserved flags, the length (0, 1, 2, 4 or 8), length 0 with
 * DATAMATCH, the fd (EBADF), an eventfd (EINVAL), memory (ENOMEM), a
 * handler the same as one the VM has (EEXIST); then ours, at most
 * MAX_IOEVENTFDS (ENOSPC). The series' overflow check of addr + len
 * (overflows_type of a u64 sum) never fails, so a range that wraps is
 * taken, as there. */
static long gvm_add_ioeventfd(struct gvm *vm, const struct gh_fn_desc *d)
{
	struct gh_fn_ioeventfd_arg a;
	struct gvm_ioeventfd *h, *iter;
	struct eventfd_ctx *ctx;
	bool datamatch;
	long ret = gvm_fn_arg(d, &a, sizeof(a));

	if (ret)
		return ret;
	if (a.flags & ~GH_IOEVENTFD_FLAGS_DATAMATCH)
		return -EINVAL; /* the series: other bits reserved */
	if (a.len > 8 || (a.len & (a.len - 1)))
		return -EINVAL; /* 0 (any length), 1, 2, 4 or 8 */
	datamatch = a.flags & GH_IOEVENTFD_FLAGS_DATAMATCH;
	if (!a.len && datamatch)
		return -EINVAL;
	ctx = eventfd_ctx_fdget(a.fd);
	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h) {
		eventfd_ctx_put(ctx);
		return -ENOMEM;
	}
	h->ctx = ctx;
	h->arg = a;
	h->datamatch = datamatch;
	h->len = datamatch ? a.len : 0;
	h->data = datamatch ? a.datamatch : 0;
	mutex_lock(&vm->lock);
	list_for_each_entry(iter, &vm->ioeventfds, node) {
		if (gvm_io_same(a.addr, h->len, h->datamatch, h->data, iter))
			ret = -EEXIST;
	}
	if (!ret && vm->n_ioeventfds >= MAX_IOEVENTFDS)
		ret = -ENOSPC;
	if (!ret) {
		down_write(&vm->io_lock);
		list_add_tail(&h->node, &vm->ioeventfds);
		vm->n_ioeventfds++;
		up_write(&vm->io_lock);
	}
	mutex_unlock(&vm->lock);
	if (ret) {
		eventfd_ctx_put(h->ctx);
		kfree(h);
	}
	return ret;
}

/* GH_VM_REMOVE_FUNCTION: every function of the type whose argument is the
 * same bytes is unbound (the series' gh_vm_rm_function); 0 whether or not
 * one was. Our vCPU functions are their fds: closing one removes it. An
 * argument over GH_FN_MAX_ARG_SIZE matches nothing and is not read. */
static long gvm_remove_function(struct gvm *vm, const struct gh_fn_desc *d)
{
	u8 buf[GH_FN_MAX_ARG_SIZE];
	struct gvm_irqfd *irqfd, *iter;
	struct gvm_ioeventfd *h, *next;

	if (!d->arg_size || d->arg_size > sizeof(buf))
		return 0;
	if (copy_from_user(buf, u64_to_user_ptr(d->arg), d->arg_size))
		return -EFAULT;
	mutex_lock(&vm->lock);
	if (d->type == GH_FN_IRQFD && d->arg_size == sizeof(irqfd->arg)) {
		list_for_each_entry_safe(irqfd, iter, &vm->irqfds, node) {
			if (!memcmp(&irqfd->arg, buf, sizeof(irqfd->arg)))
				gvm_irqfd_free(vm, irqfd);
		}
	} else if (d->type == GH_FN_IOEVENTFD && d->arg_size == sizeof(h->arg)) {
		down_write(&vm->io_lock);
		list_for_each_entry_safe(h, next, &vm->ioeventfds, node) {
			if (!memcmp(&h->arg, buf, sizeof(h->arg)))
				gvm_ioeventfd_free(vm, h);
		}
		up_write(&vm->io_lock);
	}
	mutex_unlock(&vm->lock);
	return 0;
}

static int gvm_hyp_resources(struct gvm *vm)
{
	size_t cap = 4 + GUNYAH_RM_HYP_RESOURCE_SIZE * MAX_RESOURCES, got = 0, i, n;
	u8 *res = kmalloc(cap, GFP_KERNEL), p[4] = { 0 };
	int ret;

	if (!res)
		return -ENOMEM;
	le_put(p, vm->vmid, 2);
	ret = rm_call(GUNYAH_RM_VM_GET_HYP_RESOURCES, p, sizeof(p), res, cap, &got);
	if (!ret && got < 4)
		ret = -EBADMSG;
	if (!ret) {
		n = min_t(size_t, le_get(res, 4), (min(got, cap) - 4) / GUNYAH_RM_HYP_RESOURCE_SIZE);
		for (i = 0; i < n; i++) {
			const u8 *e = res + 4 + GUNYAH_RM_HYP_RESOURCE_SIZE * i;
			u32 label = le_get(e + GUNYAH_RM_HYP_RESOURCE_LABEL, 4);

			if (e[GUNYAH_RM_HYP_RESOURCE_TYPE] == GUNYAH_RESOURCE_VCPU &&
			    label < MAX_VCPUS) {
				vm->vcpu_caps[label] = le_get(e + GUNYAH_RM_HYP_RESOURCE_CAP_ID, 8);
				vm->vcpu_capped |= 1U << label;
				gvm_bind_wake(vm, label, le_get(e + GUNYAH_RM_HYP_RESOURCE_VIRQ, 4));
			} else if (e[GUNYAH_RM_HYP_RESOURCE_TYPE] == GUNYAH_RESOURCE_BELL_TX &&
				   vm->n_bells < MAX_RESOURCES) {
				vm->bells[vm->n_bells].label = label;
				vm->bells[vm->n_bells++].cap =
					le_get(e + GUNYAH_RM_HYP_RESOURCE_CAP_ID, 8);
			}
		}
	}
	kfree(res);
	if (!ret) { /* the tickets taken before the start get their doorbells now */
		struct gvm_irqfd *irqfd;

		list_for_each_entry(irqfd, &vm->irqfds, node)
			gvm_irqfd_populate(vm, irqfd);
	}
	return ret;
}

/* GH_VM_START's work, once; under vm->lock. */
static int gvm_start(struct gvm *vm)
{
	struct gvm_region *dtb = NULL;
	u8 cfg[40] = { 0 };
	unsigned int i;
	int ret;

	if (vm->stage == GVM_STARTED)
		return 0;
	if (vm->stage != GVM_NEW)
		return -EINVAL;
	for (i = 0; i < vm->n_regions; i++) {
		struct gvm_region *r = &vm->regions[i];

		if (vm->dtb_set && vm->dtb_gpa >= r->gpa &&
		    vm->dtb_gpa - r->gpa <= r->size && vm->dtb_size <= r->size - (vm->dtb_gpa - r->gpa))
			dtb = r;
	}
	if (!dtb) { /* the series: "Failed to find the memory_handle for DTB" */
		pr_info("gunyah-vm: VM %u has no region holding its device tree\n", vm->vmid);
		return -EINVAL;
	}
	vm->stage = GVM_FAILED;
	for (i = 0; i < vm->n_regions; i++) {
		ret = gvm_share(vm, &vm->regions[i]);
		if (ret)
			return ret;
	}
	le_put(cfg, vm->vmid, 2); /* auth 0: none */
	le_put(cfg + 4, dtb->handle, 4);
	le_put(cfg + 24, vm->dtb_gpa - dtb->gpa, 8); /* the image at offset 0, size 0 */
	le_put(cfg + 32, vm->dtb_size, 8);
	ret = rm_call(GUNYAH_RM_VM_CONFIG_IMAGE, cfg, sizeof(cfg), NULL, 0, NULL);
	if (ret)
		return ret;
	vm->stage = GVM_CONFIGURED;
	ret = rm_vmid_call(GUNYAH_RM_VM_INIT, vm->vmid);
	if (!ret)
		ret = gvm_hyp_resources(vm);
	if (!ret)
		ret = rm_vmid_call(GUNYAH_RM_VM_START, vm->vmid);
	if (ret) {
		vm->stage = GVM_FAILED;
		return ret;
	}
	vm->stage = GVM_STARTED;
	return 0;
}

static void gvm_teardown(struct kref *ref)
{
	struct gvm *vm = container_of(ref, struct gvm, ref);
	unsigned long pages = 0;
	unsigned int i;
	bool reset;
	int ret;

	mutex_lock(&rm.lock);
	reset = vm->rm_state != GUNYAH_VM_STATE_NONE;
	mutex_unlock(&rm.lock);
	if (vm->stage == GVM_STARTED && !gvm_wait(vm, gvm_exited, 0, false)) {
		u8 stop[8] = { 0 };

		le_put(stop, vm->vmid, 2);
		stop[2] = 1; /* force */
		if (!rm_call(GUNYAH_RM_VM_STOP, stop, sizeof(stop), NULL, 0, NULL))
			gvm_wait(vm, gvm_exited, EXITED_TIMEOUT, false);
	}
	mutex_lock(&vm->lock); /* the functions go before the reset (the series' gh_vm_free) */
	while (!list_empty(&vm->irqfds))
		gvm_irqfd_free(vm, list_first_entry(&vm->irqfds, struct gvm_irqfd, node));
	down_write(&vm->io_lock);
	while (!list_empty(&vm->ioeventfds))
		gvm_ioeventfd_free(vm, list_first_entry(&vm->ioeventfds, struct gvm_ioeventfd, node));
	up_write(&vm->io_lock);
	mutex_unlock(&vm->lock);
	if (reset) {
		ret = rm_vmid_call(GUNYAH_RM_VM_RESET, vm->vmid);
		if (!ret && !gvm_wait(vm, gvm_reset, RESET_TIMEOUT, false))
			pr_info("gunyah-vm: VM %u did not reset\n", vm->vmid);
	}
	for (i = 0; i < vm->n_regions; i++) {
		struct gvm_region *r = &vm->regions[i];
		u8 p[8] = { 0 };

		if (r->parcel) {
			le_put(p, r->handle, 4);
			ret = rm_call(GUNYAH_RM_MEM_RECLAIM, p, sizeof(p), NULL, 0, NULL);
			if (ret) { /* still the VM's: its pages stay pinned, never reused */
				pr_info("gunyah-vm: parcel %u not reclaimed (%d): its pages stay pinned\n",
					r->handle, ret);
				continue;
			}
		}
		pages += r->npages;
		gvm_unpin(r);
	}
	rm_vmid_call(GUNYAH_RM_VM_DEALLOCATE, vm->vmid);
	gvm_unbind_wakes(vm);
	pr_info("gunyah-vm: VM %u torn down\n", vm->vmid);
	pr_info("gunyah-vm: irqfd: %d doorbell sends\n", atomic_read(&bell_sends));
	pr_info("gunyah-vm: ioeventfd: %d signals\n", atomic_read(&io_signals));
	mutex_lock(&rm.lock);
	pr_info("gunyah-vm: RM interrupts: %u rx, %u tx, %d wake-up; %u empty receives\n",
		rx_interrupts, tx_interrupts, atomic_read(&wake_count), empty_receives);
	mutex_unlock(&rm.lock);
	account_locked_vm(vm->mm, pages, false);
	mmdrop(vm->mm);
	mutex_lock(&rm.lock);
	list_del(&vm->node);
	mutex_unlock(&rm.lock);
	kfree(vm);
}

static int gvm_set_region(struct gvm *vm, void __user *arg, bool lend)
{
	struct gh_userspace_memory_region m;
	struct gvm_region *r;
	unsigned int i;
	long pinned;
	int ret;

	if (copy_from_user(&m, arg, sizeof(m)))
		return -EFAULT;
	if (m.flags & ~(GH_MEM_ALLOW_READ | GH_MEM_ALLOW_WRITE | GH_MEM_ALLOW_EXEC))
		return -EINVAL;
	if (!m.memory_size || !PAGE_ALIGNED(m.memory_size) || !PAGE_ALIGNED(m.userspace_addr) ||
	    !PAGE_ALIGNED(m.guest_phys_addr))
		return -EINVAL;
	if (m.guest_phys_addr + m.memory_size < m.guest_phys_addr ||
	    m.userspace_addr + m.memory_size < m.userspace_addr)
		return -EOVERFLOW;
	if (m.memory_size >> PAGE_SHIFT > MAX_REGION_PAGES)
		return -E2BIG;
	mutex_lock(&vm->lock);
	ret = -EBUSY; /* ours: memory is given to the VM at start, and only then */
	if (vm->stage != GVM_NEW)
		goto out;
	ret = -EEXIST;
	for (i = 0; i < vm->n_regions; i++) {
		r = &vm->regions[i];
		if (r->label == m.label ||
		    (r->gpa < m.guest_phys_addr + m.memory_size && m.guest_phys_addr < r->gpa + r->size))
			goto out;
	}
	ret = -ENOSPC;
	if (vm->n_regions == MAX_REGIONS)
		goto out;
	r = &vm->regions[vm->n_regions];
	memset(r, 0, sizeof(*r));
	r->npages = m.memory_size >> PAGE_SHIFT;
	ret = account_locked_vm(vm->mm, r->npages, true);
	if (ret)
		goto out;
	r->pages = kvcalloc(r->npages, sizeof(*r->pages), GFP_KERNEL_ACCOUNT);
	ret = -ENOMEM;
	if (!r->pages)
		goto unaccount;
	pinned = pin_user_pages_fast(m.userspace_addr, r->npages,
				     FOLL_LONGTERM | (m.flags & GH_MEM_ALLOW_WRITE ? FOLL_WRITE : 0),
				     r->pages);
	if (pinned != r->npages) {
		if (pinned > 0)
			unpin_user_pages(r->pages, pinned);
		ret = pinned < 0 ? pinned : -EFAULT;
		goto free;
	}
	if (gvm_runs(r, NULL) > MAX_SGL) {
		ret = -E2BIG;
		gvm_unpin(r);
		goto unaccount;
	}
	r->label = m.label;
	r->flags = m.flags;
	r->gpa = m.guest_phys_addr;
	r->size = m.memory_size;
	r->uaddr = m.userspace_addr;
	r->lend = lend;
	vm->n_regions++;
	mutex_unlock(&vm->lock);
	return 0;
free:
	kvfree(r->pages);
	r->pages = NULL;
unaccount:
	account_locked_vm(vm->mm, r->npages, false);
out:
	mutex_unlock(&vm->lock);
	return ret;
}

static int gvm_set_dtb(struct gvm *vm, void __user *arg)
{
	struct gh_vm_dtb_config c;
	int ret = 0;

	if (copy_from_user(&c, arg, sizeof(c)))
		return -EFAULT;
	if (c.guest_phys_addr + c.size < c.guest_phys_addr)
		return -EOVERFLOW;
	if (!c.size)
		return -EINVAL;
	mutex_lock(&vm->lock);
	if (vm->stage != GVM_NEW) {
		ret = -EBUSY;
	} else {
		vm->dtb_gpa = c.guest_phys_addr;
		vm->dtb_size = c.size;
		vm->dtb_set = true;
	}
	mutex_unlock(&vm->lock);
	return ret;
}

/* ---- vCPUs -------------------------------------------------------------- */

struct gvcpu {
	struct gvm *vm;
	u32 id;
	struct mutex lock; /* one GH_VCPU_RUN at a time */
	struct gh_vcpu_run *run; /* a zeroed page the VMM maps */
	bool read_pending;
};

static bool gvcpu_stop_wait(struct gvm *vm)
{
	return vm->rm_exited;
}

/*
 * A vCPU powered off but its VM not ended (not started yet, or off by PSCI
 * CPU_OFF): until its wake-up interrupt (another vCPU's CPU_ON: the
 * hypervisor raises it when the vCPU can run) or the RM's news (the VM's
 * end), or WAKE_TIMEOUT all the same.
 */
static void gvcpu_wait_off(struct gvcpu *vcpu)
{
	struct gvm *vm = vcpu->vm;
	unsigned long seen;
	bool stop;

	mutex_lock(&rm.lock);
	rm_drain();
	stop = gvcpu_stop_wait(vm);
	seen = rm.news;
	mutex_unlock(&rm.lock);
	if (!stop)
		wait_event_interruptible_timeout(rm.wq, rm_news(seen) ||
						 test_bit(vcpu->id, &vm->woken), WAKE_TIMEOUT);
}

static void gvcpu_status(struct gvcpu *vcpu, u32 status)
{
	struct gvm *vm = vcpu->vm;

	mutex_lock(&rm.lock);
	vcpu->run->exit_reason = GH_VCPU_EXIT_STATUS;
	vcpu->run->status.status = status;
	vcpu->run->status.exit_info.type = vm->rm_exit_type;
	vcpu->run->status.exit_info.reason_size = vm->rm_reason_size;
	memcpy(vcpu->run->status.exit_info.reason, vm->rm_reason, vm->rm_reason_size);
	mutex_unlock(&rm.lock);
}

static long gvcpu_run(struct gvcpu *vcpu)
{
	struct gh_vcpu_run *run = vcpu->run;
	struct gvm *vm = vcpu->vm;
	struct arm_smccc_1_2_regs args = { 0 }, res;
	u64 cap;
	long ret;

	if (mutex_lock_interruptible(&vcpu->lock))
		return -ERESTARTSYS;
	mutex_lock(&vm->lock);
	ret = gvm_start(vm);
	cap = vm->vcpu_caps[vcpu->id];
	if (!ret && !(vm->vcpu_capped & (1U << vcpu->id)))
		ret = -ENODEV; /* the series: a vCPU the RM did not give us */
	mutex_unlock(&vm->lock);
	if (ret)
		goto out;
	args.a0 = GUNYAH_VCPU_RUN;
	args.a1 = cap;
	if (vcpu->read_pending) {
		u64 v = 0;

		memcpy(&v, run->mmio.data, sizeof(run->mmio.data));
		args.a2 = le64_to_cpu(v);
		vcpu->read_pending = false;
	}
	for (;;) {
		if (READ_ONCE(run->immediate_exit)) {
			ret = -EINTR;
			break;
		}
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		clear_bit(vcpu->id, &vm->woken); /* a wake-up from now on is news */
		arm_smccc_1_2_hvc(&args, &res);
		args.a2 = args.a3 = args.a4 = 0;
		if ((long)res.a0 == GUNYAH_ERROR_RETRY) {
			cond_resched();
			continue;
		}
		if (res.a0) {
			ret = res.a0 == GUNYAH_ERROR_BUSY ? -EBUSY : -EINVAL;
			break;
		}
		switch (res.a1) {
		case GUNYAH_VCPU_STATE_READY:
			cond_resched();
			continue;
		case GUNYAH_VCPU_STATE_EXPECTS_WAKEUP:
		case GUNYAH_VCPU_STATE_BLOCKED:
			/* until its wake-up interrupt (or, without one, a tick) */
			wait_event_interruptible_timeout(vm->wake_wq,
							 test_bit(vcpu->id, &vm->woken),
							 vm->wakes[vcpu->id].irq ? WAKE_TIMEOUT : 1);
			continue;
		case GUNYAH_VCPU_STATE_ADDRSPACE_VMMIO_READ:
		case GUNYAH_VCPU_STATE_ADDRSPACE_VMMIO_WRITE: {
			u64 v = cpu_to_le64(res.a4);
			bool write = res.a1 == GUNYAH_VCPU_STATE_ADDRSPACE_VMMIO_WRITE;

			if (write && gvm_io_write(vm, res.a2, res.a3, res.a4)) {
				cond_resched(); /* a guest's every write may be one */
				continue; /* signalled in the kernel: the vCPU goes on */
			}
			run->exit_reason = GH_VCPU_EXIT_MMIO;
			run->mmio.phys_addr = res.a2;
			run->mmio.len = res.a3;
			run->mmio.is_write = write;
			memset(run->mmio.data, 0, sizeof(run->mmio.data));
			if (write) /* the whole register, as the hypervisor gives it */
				memcpy(run->mmio.data, &v, sizeof(run->mmio.data));
			vcpu->read_pending = !write;
			ret = 0;
			goto out;
		}
		case GUNYAH_VCPU_STATE_POWERED_OFF:
		case GUNYAH_VCPU_STATE_PSCI_SYSTEM_RESET:
		case GUNYAH_VCPU_STATE_FAULT:
			/* off for good once the RM has said how the VM ended */
			if (!gvm_wait(vm, gvcpu_stop_wait, 0, true)) {
				if (res.a1 == GUNYAH_VCPU_STATE_POWERED_OFF &&
				    !(res.a2 & GUNYAH_VCPU_POWEROFF_EXITED)) {
					gvcpu_wait_off(vcpu);
					continue;
				}
				if (!gvm_wait(vm, gvcpu_stop_wait, EXITED_TIMEOUT, true))
					continue;
			}
			gvcpu_status(vcpu, res.a1 == GUNYAH_VCPU_STATE_FAULT ? GH_VM_STATUS_CRASHED
									   : GH_VM_STATUS_EXITED);
			ret = 0;
			goto out;
		default:
			run->exit_reason = GH_VCPU_EXIT_UNKNOWN;
			ret = 0;
			goto out;
		}
	}
out:
	mutex_unlock(&vcpu->lock);
	return ret;
}

static long gvcpu_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct gvcpu *vcpu = f->private_data;

	switch (cmd) {
	case GH_VCPU_RUN:
		return gvcpu_run(vcpu);
	case GH_VCPU_MMAP_SIZE:
		return PAGE_SIZE;
	default: /* EINVAL, not ENOTTY: the series' gh_vcpu_ioctl (docs/real-gunyah.md section 16) */
		return -EINVAL;
	}
}

static vm_fault_t gvcpu_fault(struct vm_fault *vmf)
{
	struct gvcpu *vcpu = vmf->vma->vm_file->private_data;
	struct page *page;

	if (vmf->pgoff)
		return VM_FAULT_SIGBUS;
	page = virt_to_page(vcpu->run);
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct gvcpu_vm_ops = {
	.fault = gvcpu_fault,
};

static int gvcpu_mmap(struct file *f, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start > PAGE_SIZE)
		return -EINVAL;
	vma->vm_ops = &gvcpu_vm_ops;
	return 0;
}

static int gvcpu_release(struct inode *inode, struct file *f)
{
	struct gvcpu *vcpu = f->private_data;
	struct gvm *vm = vcpu->vm;

	mutex_lock(&vm->lock);
	vm->vcpu_ids &= ~(1U << vcpu->id);
	mutex_unlock(&vm->lock);
	free_page((unsigned long)vcpu->run);
	kfree(vcpu);
	kref_put(&vm->ref, gvm_teardown);
	return 0;
}

static const struct file_operations gvcpu_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = gvcpu_ioctl,
	.mmap = gvcpu_mmap,
	.release = gvcpu_release,
	.llseek = noop_llseek,
};

static long gvm_add_vcpu(struct gvm *vm, const struct gh_fn_desc *d)
{
	struct gh_fn_vcpu_arg a;
	struct gvcpu *vcpu;
	char name[24];
	int fd;

	if (d->arg_size != sizeof(a))
		return -EINVAL;
	if (copy_from_user(&a, u64_to_user_ptr(d->arg), sizeof(a)))
		return -EFAULT;
	if (a.id >= MAX_VCPUS)
		return -EINVAL;
	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL);
	if (!vcpu)
		return -ENOMEM;
	vcpu->run = (struct gh_vcpu_run *)get_zeroed_page(GFP_KERNEL);
	if (!vcpu->run) {
		kfree(vcpu);
		return -ENOMEM;
	}
	mutex_init(&vcpu->lock);
	vcpu->vm = vm;
	vcpu->id = a.id;
	mutex_lock(&vm->lock);
	if (vm->vcpu_ids & (1U << a.id)) {
		mutex_unlock(&vm->lock);
		free_page((unsigned long)vcpu->run);
		kfree(vcpu);
		return -EEXIST;
	}
	vm->vcpu_ids |= 1U << a.id;
	kref_get(&vm->ref);
	mutex_unlock(&vm->lock);
	snprintf(name, sizeof(name), "gh-vcpu:%u", a.id);
	fd = anon_inode_getfd(name, &gvcpu_fops, vcpu, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		mutex_lock(&vm->lock);
		vm->vcpu_ids &= ~(1U << a.id);
		mutex_unlock(&vm->lock);
		free_page((unsigned long)vcpu->run);
		kfree(vcpu);
		kref_put(&vm->ref, gvm_teardown);
	}
	return fd;
}

static long gvm_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct gvm *vm = f->private_data;
	void __user *uarg = (void __user *)arg;
	struct gh_fn_desc d;
	long ret;

	switch (cmd) {
	case GH_VM_SET_USER_MEM_REGION:
		return gvm_set_region(vm, uarg, false);
	case GH_VM_ANDROID_LEND_USER_MEM:
		return gvm_set_region(vm, uarg, true);
	case GH_VM_SET_DTB_CONFIG:
		return gvm_set_dtb(vm, uarg);
	case GH_VM_START:
		mutex_lock(&vm->lock);
		ret = gvm_start(vm);
		mutex_unlock(&vm->lock);
		return ret;
	case GH_VM_ADD_FUNCTION:
		if (copy_from_user(&d, uarg, sizeof(d)))
			return -EFAULT;
		if (d.arg_size > GH_FN_MAX_ARG_SIZE)
			return -EINVAL;
		if (d.type == GH_FN_IRQFD)
			return gvm_add_irqfd(vm, &d);
		if (d.type == GH_FN_IOEVENTFD)
			return gvm_add_ioeventfd(vm, &d);
		if (d.type != GH_FN_VCPU)
			return -ENOENT; /* the series: no such function */
		return gvm_add_vcpu(vm, &d);
	case GH_VM_REMOVE_FUNCTION:
		if (copy_from_user(&d, uarg, sizeof(d)))
			return -EFAULT;
		return gvm_remove_function(vm, &d);
	default:
		return -ENOTTY;
	}
}

static int gvm_release(struct inode *inode, struct file *f)
{
	struct gvm *vm = f->private_data;

	kref_put(&vm->ref, gvm_teardown);
	return 0;
}

static const struct file_operations gvm_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = gvm_ioctl,
	.release = gvm_release,
	.llseek = noop_llseek,
};

static long gvm_create(void)
{
	struct gvm *vm = kzalloc(sizeof(*vm), GFP_KERNEL);
	u8 req[4] = { 0 }, vmid[4];
	size_t got = 0;
	int ret, fd;

	if (!vm)
		return -ENOMEM;
	kref_init(&vm->ref);
	mutex_init(&vm->lock);
	init_waitqueue_head(&vm->wake_wq);
	INIT_LIST_HEAD(&vm->irqfds);
	init_rwsem(&vm->io_lock);
	INIT_LIST_HEAD(&vm->ioeventfds);
	ret = rm_call(GUNYAH_RM_VM_ALLOCATE, req, sizeof(req), vmid, sizeof(vmid), &got);
	if (!ret && got < 4)
		ret = -EBADMSG;
	if (ret) {
		pr_info("gunyah-vm: VM_ALLOCATE failed: %d\n", ret);
		kfree(vm);
		return ret;
	}
	vm->vmid = le_get(vmid, 4);
	pr_info("gunyah-vm: VM_ALLOCATE gave VMID %#x\n", vm->vmid);
	vm->mm = current->mm;
	mmgrab(vm->mm);
	mutex_lock(&rm.lock);
	list_add(&vm->node, &rm.vms);
	mutex_unlock(&rm.lock);
	fd = anon_inode_getfd("gunyah-vm", &gvm_fops, vm, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		kref_put(&vm->ref, gvm_teardown);
	return fd;
}

static long gunyah_dev_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case GH_CREATE_VM:
		if (arg) /* the series: the VM type, 0 the only one */
			return -EINVAL;
		return gvm_create();
	default:
		return -ENOTTY;
	}
}

static const struct file_operations gunyah_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = gunyah_dev_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice gunyah_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "gunyah",
	.fops = &gunyah_dev_fops,
};

static void rm_unbind(void)
{
	if (rm.rx_irq > 0) {
		free_irq(rm.rx_irq, &rm);
		irq_dispose_mapping(rm.rx_irq);
	}
	if (rm.tx_irq > 0) {
		free_irq(rm.tx_irq, &rm);
		irq_dispose_mapping(rm.tx_irq);
	}
	of_node_put(rm.gic);
	of_node_put(rm.node);
}

/* The RM node's two interrupts (tx, rx), requested; its GIC, for the
 * wake-up virqs' mappings. */
static int rm_bind(void)
{
	int ret;

	rm.node = of_find_compatible_node(NULL, NULL, GUNYAH_RM_COMPATIBLE);
	if (!rm.node) {
		pr_info("gunyah-vm: no " GUNYAH_RM_COMPATIBLE " node in the device tree\n");
		return -ENODEV;
	}
	rm.gic = of_irq_find_parent(rm.node);
	rm.tx_irq = irq_of_parse_and_map(rm.node, 0);
	rm.rx_irq = irq_of_parse_and_map(rm.node, 1);
	if (!rm.gic || rm.tx_irq <= 0 || rm.rx_irq <= 0) {
		pr_info("gunyah-vm: the RM node's interrupts do not map\n");
		ret = -ENXIO;
		goto fail;
	}
	/* an edge an earlier client left pending: its messages are the first look's */
	irq_set_irqchip_state(rm.rx_irq, IRQCHIP_STATE_PENDING, false);
	irq_set_irqchip_state(rm.tx_irq, IRQCHIP_STATE_PENDING, false);
	rm.more = true;
	ret = request_irq(rm.rx_irq, rm_rx_interrupt, 0, "gunyah-rm-rx", &rm);
	if (ret) {
		rm.rx_irq = 0;
		goto fail;
	}
	ret = request_irq(rm.tx_irq, rm_tx_interrupt, 0, "gunyah-rm-tx", &rm);
	if (ret) {
		rm.tx_irq = 0;
		goto fail;
	}
	return 0;
fail:
	rm_unbind();
	return ret;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * rm_bench=N: N VM_GET_VMID requests, each timed from before its send to
 * after its reply was received (send, the receive interrupt, receive), for
 * the bench (bench/run.py, rm-round-trip). One line: the mean, the median.
 */
static void rm_time_round_trips(unsigned int n)
{
	u64 *ns, total = 0;
	unsigned int i, done = 0;
	u8 self[4];
	size_t got;

	n = min(n, 10000U);
	ns = kcalloc(n, sizeof(*ns), GFP_KERNEL);
	if (!ns)
		return;
	for (i = 0; i < n; i++, done++) {
		u64 t = ktime_get_ns();

		if (rm_call(GUNYAH_RM_VM_GET_VMID, NULL, 0, self, sizeof(self), &got))
			break;
		ns[i] = ktime_get_ns() - t;
		total += ns[i];
	}
	if (done) {
		sort(ns, done, sizeof(*ns), cmp_u64, NULL);
		pr_info("gunyah-vm: rm round trip: %u calls, %llu ns each, median %llu ns\n", done,
			total / done, ns[done / 2]);
	}
	kfree(ns);
}

static int __init gunyah_vm_init(void)
{
	int ret;

	mutex_init(&rm.lock);
	INIT_LIST_HEAD(&rm.vms);
	init_waitqueue_head(&rm.wq);
	rm.msg = kzalloc(GUNYAH_RM_MESSAGE_SIZE, GFP_KERNEL);
	if (!rm.msg)
		return -ENOMEM;
	ret = rm_bind();
	if (ret) {
		kfree(rm.msg);
		return ret;
	}
	ret = misc_register(&gunyah_dev);
	if (ret) {
		rm_unbind();
		kfree(rm.msg);
		return ret;
	}
	pr_info("gunyah-vm: /dev/gunyah ready\n");
	if (rm_bench)
		rm_time_round_trips(rm_bench);
	return 0;
}

static void __exit gunyah_vm_exit(void)
{
	misc_deregister(&gunyah_dev);
	rm_unbind();
	pr_info("gunyah-vm: RM interrupts: %u rx, %u tx, %d wake-up; %u empty receives\n",
		rx_interrupts, tx_interrupts, atomic_read(&wake_count), empty_receives);
	kfree(rm.msg);
}

module_init(gunyah_vm_init);
module_exit(gunyah_vm_exit);
MODULE_DESCRIPTION("Gunyah VM manager: /dev/gunyah with the Linux series' v14 ioctls");
MODULE_LICENSE("GPL");
