/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/* Written from gunyah.abi.vm_manager (python -m gunyah.toolchain); do not edit. */
#ifndef GUNYAH_UAPI_H
#define GUNYAH_UAPI_H
#ifndef __KERNEL__
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
#endif

#define GH_MEM_ALLOW_READ 1
#define GH_MEM_ALLOW_WRITE 2
#define GH_MEM_ALLOW_EXEC 4
#define GH_FN_VCPU 1
#define GH_FN_IRQFD 2
#define GH_FN_IOEVENTFD 3
#define GH_FN_MAX_ARG_SIZE 256
#define GH_IRQFD_LEVEL 1
#define GH_IOEVENTFD_FLAGS_DATAMATCH 1
#define GH_VM_STATUS_LOAD_FAILED 1
#define GH_VM_STATUS_EXITED 2
#define GH_VM_STATUS_CRASHED 3
#define GH_VM_MAX_EXIT_REASON_SIZE 8
#define GH_VCPU_EXIT_UNKNOWN 0
#define GH_VCPU_EXIT_MMIO 1
#define GH_VCPU_EXIT_STATUS 2

struct gh_userspace_memory_region {
	__u32 label;
	__u32 flags;
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
};
_Static_assert(sizeof(struct gh_userspace_memory_region) == 32, "gh_userspace_memory_region");
_Static_assert(__builtin_offsetof(struct gh_userspace_memory_region, label) == 0, "gh_userspace_memory_region.label");
_Static_assert(__builtin_offsetof(struct gh_userspace_memory_region, flags) == 4, "gh_userspace_memory_region.flags");
_Static_assert(__builtin_offsetof(struct gh_userspace_memory_region, guest_phys_addr) == 8, "gh_userspace_memory_region.guest_phys_addr");
_Static_assert(__builtin_offsetof(struct gh_userspace_memory_region, memory_size) == 16, "gh_userspace_memory_region.memory_size");
_Static_assert(__builtin_offsetof(struct gh_userspace_memory_region, userspace_addr) == 24, "gh_userspace_memory_region.userspace_addr");

struct gh_vm_dtb_config {
	__u64 guest_phys_addr;
	__u64 size;
};
_Static_assert(sizeof(struct gh_vm_dtb_config) == 16, "gh_vm_dtb_config");
_Static_assert(__builtin_offsetof(struct gh_vm_dtb_config, guest_phys_addr) == 0, "gh_vm_dtb_config.guest_phys_addr");
_Static_assert(__builtin_offsetof(struct gh_vm_dtb_config, size) == 8, "gh_vm_dtb_config.size");

struct gh_fn_vcpu_arg {
	__u32 id;
};
_Static_assert(sizeof(struct gh_fn_vcpu_arg) == 4, "gh_fn_vcpu_arg");
_Static_assert(__builtin_offsetof(struct gh_fn_vcpu_arg, id) == 0, "gh_fn_vcpu_arg.id");

struct gh_fn_irqfd_arg {
	__u32 fd;
	__u32 label;
	__u32 flags;
	__u32 padding;
};
_Static_assert(sizeof(struct gh_fn_irqfd_arg) == 16, "gh_fn_irqfd_arg");
_Static_assert(__builtin_offsetof(struct gh_fn_irqfd_arg, fd) == 0, "gh_fn_irqfd_arg.fd");
_Static_assert(__builtin_offsetof(struct gh_fn_irqfd_arg, label) == 4, "gh_fn_irqfd_arg.label");
_Static_assert(__builtin_offsetof(struct gh_fn_irqfd_arg, flags) == 8, "gh_fn_irqfd_arg.flags");
_Static_assert(__builtin_offsetof(struct gh_fn_irqfd_arg, padding) == 12, "gh_fn_irqfd_arg.padding");

struct gh_fn_ioeventfd_arg {
	__u64 datamatch;
	__u64 addr;
	__u32 len;
	__s32 fd;
	__u32 flags;
	__u32 padding;
};
_Static_assert(sizeof(struct gh_fn_ioeventfd_arg) == 32, "gh_fn_ioeventfd_arg");
_Static_assert(__builtin_offsetof(struct gh_fn_ioeventfd_arg, datamatch) == 0, "gh_fn_ioeventfd_arg.datamatch");
_Static_assert(__builtin_offsetof(struct gh_fn_ioeventfd_arg, addr) == 8, "gh_fn_ioeventfd_arg.addr");
_Static_assert(__builtin_offsetof(struct gh_fn_ioeventfd_arg, len) == 16, "gh_fn_ioeventfd_arg.len");
_Static_assert(__builtin_offsetof(struct gh_fn_ioeventfd_arg, fd) == 20, "gh_fn_ioeventfd_arg.fd");
_Static_assert(__builtin_offsetof(struct gh_fn_ioeventfd_arg, flags) == 24, "gh_fn_ioeventfd_arg.flags");
_Static_assert(__builtin_offsetof(struct gh_fn_ioeventfd_arg, padding) == 28, "gh_fn_ioeventfd_arg.padding");

struct gh_fn_desc {
	__u32 type;
	__u32 arg_size;
	__u64 arg;
};
_Static_assert(sizeof(struct gh_fn_desc) == 16, "gh_fn_desc");
_Static_assert(__builtin_offsetof(struct gh_fn_desc, type) == 0, "gh_fn_desc.type");
_Static_assert(__builtin_offsetof(struct gh_fn_desc, arg_size) == 4, "gh_fn_desc.arg_size");
_Static_assert(__builtin_offsetof(struct gh_fn_desc, arg) == 8, "gh_fn_desc.arg");

struct gh_vm_exit_info {
	__u16 type;
	__u16 padding;
	__u32 reason_size;
	__u8 reason[8];
};
_Static_assert(sizeof(struct gh_vm_exit_info) == 16, "gh_vm_exit_info");
_Static_assert(__builtin_offsetof(struct gh_vm_exit_info, type) == 0, "gh_vm_exit_info.type");
_Static_assert(__builtin_offsetof(struct gh_vm_exit_info, padding) == 2, "gh_vm_exit_info.padding");
_Static_assert(__builtin_offsetof(struct gh_vm_exit_info, reason_size) == 4, "gh_vm_exit_info.reason_size");
_Static_assert(__builtin_offsetof(struct gh_vm_exit_info, reason) == 8, "gh_vm_exit_info.reason");

struct gh_vcpu_run {
	__u8 immediate_exit;
	__u8 padding[7];
	__u32 exit_reason;
	union {
		struct {
			__u64 phys_addr;
			__u8 data[8];
			__u32 len;
			__u8 is_write;
		} mmio;
		struct {
			__u32 status;
			struct gh_vm_exit_info exit_info;
		} status;
	};
};
_Static_assert(sizeof(struct gh_vcpu_run) == 40, "gh_vcpu_run");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, immediate_exit) == 0, "gh_vcpu_run.immediate_exit");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, padding) == 1, "gh_vcpu_run.padding");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, exit_reason) == 8, "gh_vcpu_run.exit_reason");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, mmio.phys_addr) == 16, "gh_vcpu_run.mmio.phys_addr");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, mmio.data) == 24, "gh_vcpu_run.mmio.data");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, mmio.len) == 32, "gh_vcpu_run.mmio.len");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, mmio.is_write) == 36, "gh_vcpu_run.mmio.is_write");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, status.status) == 16, "gh_vcpu_run.status.status");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, status.exit_info.type) == 20, "gh_vcpu_run.status.exit_info.type");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, status.exit_info.padding) == 22, "gh_vcpu_run.status.exit_info.padding");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, status.exit_info.reason_size) == 24, "gh_vcpu_run.status.exit_info.reason_size");
_Static_assert(__builtin_offsetof(struct gh_vcpu_run, status.exit_info.reason) == 28, "gh_vcpu_run.status.exit_info.reason");

struct gh_vm_firmware_config {
	__u64 guest_phys_addr;
	__u64 size;
};
_Static_assert(sizeof(struct gh_vm_firmware_config) == 16, "gh_vm_firmware_config");
_Static_assert(__builtin_offsetof(struct gh_vm_firmware_config, guest_phys_addr) == 0, "gh_vm_firmware_config.guest_phys_addr");
_Static_assert(__builtin_offsetof(struct gh_vm_firmware_config, size) == 8, "gh_vm_firmware_config.size");

#define GH_CREATE_VM 0x4700U
#define GH_VM_SET_USER_MEM_REGION 0x40204701U
#define GH_VM_SET_DTB_CONFIG 0x40104702U
#define GH_VM_START 0x4703U
#define GH_VM_ADD_FUNCTION 0x40104704U
#define GH_VCPU_RUN 0x4705U
#define GH_VCPU_MMAP_SIZE 0x4706U
#define GH_VM_REMOVE_FUNCTION 0x40104707U
#define GH_ANDROID_TENTATIVE_UAPI 0x4110U
#define GH_VM_ANDROID_LEND_USER_MEM 0x40204111U
#define GH_VM_ANDROID_SET_FW_CONFIG 0x40104112U

#endif
