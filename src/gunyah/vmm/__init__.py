"""Our VMM for a booted primary VM: vmm.c (built as vmm.elf by
`python -m gunyah.toolchain`) runs a VM through /dev/gunyah, and
devicetree.py writes the VM's device tree it hands the RM."""
