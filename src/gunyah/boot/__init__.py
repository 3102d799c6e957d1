"""A real arm64 Linux kernel on the model, in QEMU (`gunyah boot`).

`machine` runs one boot; `channel` answers the shim's calls from the model;
`devicetree`, `initramfs` and `modules` build what the guest is given;
`kernel` finds the parts (`setup.sh` fetches them); `matrix` runs the
conformance matrix on the kernel. The EL2 shim is in `shim/`, our
identification module in `module/`.
"""
