/*
 * say(name, ret): one line "<SAY_PREFIX><name> = <ret>" or "... errno <-ret>"
 * on stdout, as the tests' VMMs report each step (the test reads them from
 * the boot's console). Define SAY_PREFIX before including it.
 */
#ifndef TESTS_VMMS_SAY_H
#define TESTS_VMMS_SAY_H

static void say(const char *name, long ret)
{
	char buf[96];
	unsigned long n = 0, v = ret < 0 ? (unsigned long)-ret : (unsigned long)ret;
	char digits[24];
	int k = 0;

	for (const char *s = SAY_PREFIX; *s; s++)
		buf[n++] = *s;
	while (*name && n < 60)
		buf[n++] = *name++;
	for (const char *s = ret < 0 ? " errno " : " = "; *s; s++)
		buf[n++] = *s;
	do {
		digits[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (k)
		buf[n++] = digits[--k];
	buf[n++] = '\n';
	sys6(SYS_write, 1, (long)buf, (long)n, 0, 0, 0);
}

#endif
