/*
 * VGIC_TAKE_SPI word, bit: wake this vCPU's redistributor, put one SPI
 * (bit `bit` of GICD_IGROUPR/ISENABLER word `word`) in Group 1 and enable
 * it, enable Group 1 in the distributor and the CPU interface, unmask every
 * priority. The vGIC at the RM's addresses (distributor 0x40010000,
 * redistributor 0x40020000: docs/boot.md section 13). Clobbers x1, x2.
 */
	.macro	VGIC_TAKE_SPI word, bit
	ldr	x1, =0x40020000		/* its redistributor's RD_base */
	str	wzr, [x1, #0x14]	/* GICR_WAKER: awake */
	ldr	x1, =0x40010000		/* its distributor */
	mov	w2, #(1 << \bit)
	str	w2, [x1, #(0x80 + 4 * \word)]	/* GICD_IGROUPR<word>: Group 1 */
	str	w2, [x1, #(0x100 + 4 * \word)]	/* GICD_ISENABLER<word> */
	mov	w2, #2
	str	w2, [x1]		/* GICD_CTLR: EnableGrp1 */
	mov	x2, #0xff
	msr	icc_pmr_el1, x2
	mov	x2, #1
	msr	icc_igrpen1_el1, x2
	isb
	.endm
