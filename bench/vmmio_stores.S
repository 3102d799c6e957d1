/*
 * A secondary VM's guest for the vmmio exit bench (bench/run.py, bench_vm):
 * STORES byte stores to the PL011's data register at 0x9000000 (each one a
 * vcpu_run exit its VMM emulates, no line printed but one each 120 bytes),
 * a newline, then PSCI SYSTEM_OFF. Linked at 0x80000000 with
 * tests/guests/secondary/secondary.ld.
 */
#define STORES 2000

	.text
	.global _start
_start:
	movz	x20, #0x900, lsl #16
	mov	x21, #STORES
	mov	w0, #'.'
1:	str	w0, [x20]
	subs	x21, x21, #1
	b.ne	1b
	mov	w0, #'\n'
	str	w0, [x20]
	movz	w0, #0x8400, lsl #16
	movk	w0, #0x0008		/* PSCI SYSTEM_OFF */
	hvc	#0
	b	.
