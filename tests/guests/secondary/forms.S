/*
 * Load and store forms, one word each, in the order tests/test_vmmio.py
 * lists what a data abort on each reports (never run: only decoded).
 */
	.text
	.global _start
_start:
	str	x0, [x20]		/* unsigned immediate */
	str	w22, [x20, #44]
	strb	w21, [x20, #48]
	strh	w3, [x1, #2]
	ldr	x21, [x20, #24]
	ldr	w22, [x20, #40]
	ldrb	w5, [x20, #0x70]
	ldrh	w7, [x20, #0x90]
	ldrsb	x3, [x20, #0x50]
	ldrsb	w3, [x20, #0x50]
	ldrsh	x4, [x20, #0x60]
	ldrsh	w4, [x20, #0x60]
	ldrsw	x6, [x20, #0x80]
	stur	x1, [x20, #-8]		/* unscaled */
	ldursh	w2, [x3, #-1]
	str	w1, [x20, x8]		/* register offset */
	ldr	x9, [x2, w3, sxtw #3]
	ldrsb	x9, [x2, x3]
	str	xzr, [x20]		/* SRT 31 */
	ldr	xzr, [x20]
	stlr	x1, [x20]		/* acquire / release */
	ldarb	w9, [x20]
	sttr	w1, [x2, #4]		/* unprivileged */
	stp	x1, x1, [x20]		/* no valid ISS: */
	ldp	w1, w2, [x20]
	ldxr	x3, [x20]
	stxr	w4, x3, [x20]
	str	x1, [x20], #8
	ldr	x1, [x20, #8]!
	str	d0, [x20]
	ldr	q1, [x20, #16]
	prfm	pldl1keep, [x20]
	ldr	x1, .
	ldaxr	x1, [x20]
	b	.
