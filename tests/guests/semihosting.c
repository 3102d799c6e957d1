/*
 * Console output by every supported semihosting call, then an exit chosen
 * by X0 at entry:
 *   0: SYS_EXIT, application exit, status 7    1: SYS_EXIT_EXTENDED, status 42
 *   2: BRK #0 with X0 = 0x1234 (status 0x1234, whole)  3: SYS_EXIT, runtime error
 */
#include "gunyah_guest.h"

#define SYS_OPEN 0x01
#define SYS_WRITE 0x05
#define SYS_EXIT_EXTENDED 0x20

void _start(u64 mode)
{
	char c = 'A';
	semihost(SYS_WRITEC, &c);
	put_str("\nhello\n");
	u64 open_args[3] = { (u64) ":tt", 4, 3 };
	u64 out = semihost(SYS_OPEN, open_args);
	const char msg[] = "via SYS_WRITE\n";
	u64 write_args[3] = { out, (u64)msg, sizeof(msg) - 1 };
	u64 left = semihost(SYS_WRITE, write_args);
	const char err[] = "to stderr\n";
	u64 err_args[3] = { 2, (u64)err, sizeof(err) - 1 };
	left += semihost(SYS_WRITE, err_args);
	if (left != 0)
		put_str("short write\n");

	u64 block[2] = { ADP_STOPPED_APPLICATION_EXIT, 7 };
	switch (mode) {
	case 0:
		semihost(SYS_EXIT, block);
		break;
	case 1:
		block[1] = 42;
		semihost(SYS_EXIT_EXTENDED, block);
		break;
	case 2:
		brk_exit(0x1234);
	case 3:
		block[0] = 0x20023; /* ADP_Stopped_RunTimeErrorUnknown */
		semihost(SYS_EXIT, block);
		break;
	}
	semihost_exit(99);
}
