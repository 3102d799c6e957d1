"""A real arm64 Linux kernel on the model, in QEMU (`gunyah boot`).

`machine` runs one boot from its pieces: `layout` (the one memory map the
shim's C header is generated from), `options` (what is asked, checked),
`qemu` (its command line), `channel` (the shim's calls, answered by the
model), `console` (what the guest prints, bounded), `results` (the verdict
and exit status); `devicetree`, `initramfs` and `modules` build what the
guest is given;
`kernel` finds the parts (`setup.sh` fetches them); `matrix` runs the
conformance matrix on the kernel. The EL2 shim is in `shim/`, our
identification module in `module/`.
"""
