// SPDX-License-Identifier: GPL-2.0-only
/*
 * A stand-in for Gunyah's VM manager, for testing `gunyah probe --active` on
 * a real kernel: it registers the misc device /dev/gunyah and answers one
 * create-VM ioctl, as one driver generation would, with a new anonymous-inode
 * descriptor for the "VM"; closing it "destroys" the VM. Nothing reaches a
 * hypervisor. The numbers are spelled with the kernel's own _IO(), as each
 * generation's uapi header spells them:
 *
 *   abi=upstream  _IO('G', 0x00) creates, any other ioctl is -ENOTTY
 *   abi=vendor    _IO(0xB2, 0x01) creates, any other ioctl is -ENOTTY
 *   abi=einval    _IO('G', 0x00) is -EINVAL (a driver that refuses the VM)
 *
 * It logs each creation and destruction, so a test can see the VM went.
 */
#include <linux/anon_inodes.h>
#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/string.h>

static char *abi = "upstream";
module_param(abi, charp, 0444);

#define UPSTREAM_CREATE_VM _IO('G', 0x00)
#define VENDOR_CREATE_VM _IO(0xB2, 0x01)

static int vm_release(struct inode *inode, struct file *file)
{
	pr_info("gunyah-standin: VM destroyed\n");
	return 0;
}

static const struct file_operations vm_fops = {
	.owner = THIS_MODULE,
	.release = vm_release,
};

static long standin_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	unsigned int creates = strcmp(abi, "vendor") ? UPSTREAM_CREATE_VM : VENDOR_CREATE_VM;
	int fd;

	if (cmd != creates)
		return -ENOTTY;
	if (!strcmp(abi, "einval")) {
		pr_info("gunyah-standin: refused a VM (ioctl %#x)\n", cmd);
		return -EINVAL;
	}
	fd = anon_inode_getfd("gunyah-vm", &vm_fops, NULL, O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		pr_info("gunyah-standin: created a VM (ioctl %#x)\n", cmd);
	return fd;
}

static const struct file_operations standin_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = standin_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice standin = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "gunyah",
	.fops = &standin_fops,
};

static int __init standin_init(void)
{
	return misc_register(&standin);
}

static void __exit standin_exit(void)
{
	misc_deregister(&standin);
}

module_init(standin_init);
module_exit(standin_exit);
MODULE_LICENSE("GPL");
