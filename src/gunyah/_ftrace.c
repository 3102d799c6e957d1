/*
 * The compiled scanner behind `gunyah trace stats` for ftrace text.
 *
 * numpy over whole blocks stays far slower than reading the file (every field
 * is a gather of its own); this walks each block once, parses each event's
 * fields in place and counts call keys in a hash table, with the GIL released
 * so that blocks are scanned on every core. It reads exactly what
 * trace.ftrace.parse_ftrace (the numpy parser, and the reference for this
 * one) reads:
 *
 *   (HVC|SMC) at 0x<1-16 hex> (r0: 0x<1-16 hex>, imm: 0x<1-16 hex, <= 0xffff>)
 *
 * anchored anywhere in a line; an anchor whose fields do not parse makes its
 * line malformed. So does an event's name, `kvm_hvc_arm64: ` or
 * `kvm_smc_arm64: `, not followed at once by a call of its own conduit that
 * parses. Keys are laid out as trace.calls._call_keys lays them out.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* GUNYAH_NO_SIMD builds the plain C loop alone, as on CPUs without SSE2:
 * the tests build it so, to check the loop AArch64 runs. */
#if defined(__SSE2__) && !defined(GUNYAH_NO_SIMD)
#define HAVE_SSE2_LOOP 1
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(GUNYAH_NO_SIMD)
#define HAVE_AVX2_LOOP 1
#include <immintrin.h>
#endif

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

#define EMPTY UINT64_MAX /* never a key: key bits 62:56 and 39:33 are zero */
/* Distinct calls a table keeps; the calls of any further ones are counted
 * together under OTHERS (bit 62, in no call's key), so memory stays bounded
 * whatever a trace holds. As trace.MAX_DISTINCT and trace.OTHERS. */
#define MAX_DISTINCT 65536
#define OTHERS ((uint64_t)1 << 62)
#define TABLE_CAPSULE "gunyah._ftrace.table"

static int8_t hex_value[256];

typedef struct {
    uint64_t *slot; /* pairs: key, count */
    size_t cap;     /* a power of two */
    int shift;      /* 64 - log2(cap) */
    size_t used;
} table_t;

static size_t slot_of(const table_t *t, uint64_t key)
{
    /* Fibonacci hashing: the top bits of the product mix every key bit */
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> t->shift);
}

static int table_init(table_t *t, size_t cap)
{
    t->slot = malloc(cap * 2 * sizeof(uint64_t));
    if (!t->slot)
        return -1;
    for (size_t i = 0; i < cap; i++) {
        t->slot[2 * i] = EMPTY;
        t->slot[2 * i + 1] = 0;
    }
    t->cap = cap;
    t->shift = 64;
    for (size_t c = cap; c > 1; c >>= 1)
        t->shift--;
    t->used = 0;
    return 0;
}

static int table_insert(table_t *t, uint64_t key, uint64_t n);

/* Adds n to key's count; -1 when memory ran out (the count is then lost). */
static ALWAYS_INLINE int table_add(table_t *t, uint64_t key, uint64_t n)
{
    size_t i = slot_of(t, key);
    if (t->slot[2 * i] == key) { /* few distinct calls: nearly always so */
        t->slot[2 * i + 1] += n;
        return 0;
    }
    return table_insert(t, key, n);
}

static int table_insert(table_t *t, uint64_t key, uint64_t n)
{
    size_t i = slot_of(t, key);
    while (t->slot[2 * i] != key) {
        if (t->slot[2 * i] == EMPTY) {
            if (t->used >= MAX_DISTINCT && key != OTHERS)
                return table_insert(t, OTHERS, n);
            if (4 * (t->used + 1) > t->cap) { /* at most a quarter full: few collisions */
                table_t bigger;
                if (table_init(&bigger, 2 * t->cap))
                    return -1;
                for (size_t j = 0; j < t->cap; j++)
                    if (t->slot[2 * j] != EMPTY)
                        table_insert(&bigger, t->slot[2 * j], t->slot[2 * j + 1]);
                free(t->slot);
                *t = bigger;
                return table_insert(t, key, n);
            }
            t->slot[2 * i] = key;
            t->used++;
            break;
        }
        i = (i + 1) & (t->cap - 1);
    }
    t->slot[2 * i + 1] += n;
    return 0;
}

static ALWAYS_INLINE uint64_t load_le64(const unsigned char *s)
{
    uint64_t w;
    memcpy(&w, s, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

#define ONES 0x0101010101010101ull
#define HIGH 0x8080808080808080ull

/* Eight hex digits at once (w holds them in memory order, little-endian):
 * 1 and their value in *value if all eight are digits, else 0. For bytes below
 * 0x80, adding 0x80 - k sets a byte's high bit exactly when it is >= k. */
static ALWAYS_INLINE int hex8(uint64_t w, uint64_t *value)
{
    if (w & HIGH)
        return 0;
    uint64_t low = w | 0x20 * ONES; /* 'A'-'F' -> 'a'-'f'; no other byte becomes a letter */
    uint64_t digit = (w + (0x80 - '0') * ONES) & ~(w + (0x80 - '9' - 1) * ONES);
    uint64_t letter = (low + (0x80 - 'a') * ONES) & ~(low + (0x80 - 'f' - 1) * ONES);
    if (((digit | letter) & HIGH) != HIGH)
        return 0;
    /* a digit's value is its low nibble; a letter's is its low nibble + 9 */
    uint64_t v = (w & 0x0F * ONES) + ((letter & HIGH) >> 7) * 9;
    v = ((v << 4) | (v >> 8)) & 0x00FF00FF00FF00FFull;  /* digit pairs */
    v = ((v << 8) | (v >> 16)) & 0x0000FFFF0000FFFFull; /* quads */
    *value = ((v << 16) | (v >> 32)) & 0xFFFFFFFFull;
    return 1;
}

/* 1 to 16 hex digits, then `term`; on success *p is past the terminator. */
static ALWAYS_INLINE int hex_field_bytewise(const unsigned char **p, const unsigned char *end,
                                            unsigned char term, uint64_t *value)
{
    const unsigned char *s = *p;
    uint64_t v = 0;
    int n = 0;
    while (s < end && hex_value[*s] >= 0) {
        if (++n > 16)
            return 0;
        v = v << 4 | (uint64_t)hex_value[*s++];
    }
    if (n == 0 || s >= end || *s != term)
        return 0;
    *value = v;
    *p = s + 1;
    return 1;
}

/* The same, eight digits at a time for the widths the kernel prints (%08lx,
 * %016lx); any other width goes byte by byte. */
static ALWAYS_INLINE int hex_field(const unsigned char **p, const unsigned char *end,
                                   unsigned char term, uint64_t *value)
{
    const unsigned char *s = *p;
    uint64_t hi, lo;
    if (end - s > 16 && hex8(load_le64(s), &hi)) {
        if (s[8] == term) {
            *value = hi;
            *p = s + 9;
            return 1;
        }
        if (hex8(load_le64(s + 8), &lo) && s[16] == term) {
            *value = hi << 32 | lo;
            *p = s + 17;
            return 1;
        }
    }
    return hex_field_bytewise(p, end, term, value);
}

static ALWAYS_INLINE int literal(const unsigned char **p, const unsigned char *end,
                                 const char *text, size_t len)
{
    if ((size_t)(end - *p) < len || memcmp(*p, text, len) != 0)
        return 0;
    *p += len;
    return 1;
}

enum { NOT_EVENT, MALFORMED, CALL };

/* What stands at c, the 'C' of "HVC at 0x"/"SMC at 0x", whose "HV"/"SM" the
 * caller checked; a call's key goes to *key, and where it ends to *after. */
static ALWAYS_INLINE int parse_event(const unsigned char *c, const unsigned char *end,
                                     uint64_t *key, const unsigned char **after)
{
    const unsigned char *p = c + 1;
    uint64_t pc, r0, imm;
    if (!literal(&p, end, " at 0x", 6))
        return NOT_EVENT;
    if (!hex_field(&p, end, ' ', &pc) || !literal(&p, end, "(r0: 0x", 7) ||
        !hex_field(&p, end, ',', &r0) || !literal(&p, end, " imm: 0x", 8) ||
        !hex_field_bytewise(&p, end, ')', &imm) || imm > 0xFFFF)
        return MALFORMED;
    *after = p;
    /* conduit in bit 63, immediate in 55:40, then the function ID (X0's low
     * 32 bits), or bit 32 alone for a native call, whose X0 is an argument */
    *key = (uint64_t)(c[-2] == 'S') << 63 | imm << 40 |
           (imm == 0 ? (r0 & 0xFFFFFFFFull) : (uint64_t)1 << 32);
    return CALL;
}

typedef struct {
    size_t lines, calls, bad;
    int nomem;
} scan_result;

typedef struct {
    const unsigned char *base, *first, *end;
    table_t *t;
    unsigned char *bad; /* int64 pairs (offset, line), possibly unaligned */
    size_t bad_room;
    const unsigned char *last_bad; /* where the last malformed event was, or NULL */
    const unsigned char *counted; /* newlines before here are in `before` */
    size_t before;
    scan_result r;
} scanner;

/* Marks the line holding c malformed, once however many bad events it holds;
 * each byte is looked at once here, so a line dense with bad events costs its
 * length, not its length squared. */
static void mark_malformed(scanner *s, const unsigned char *c)
{
    const unsigned char *from = s->last_bad;
    s->last_bad = c;
    if (from && !memchr(from, '\n', (size_t)(c - from)))
        return;
    const unsigned char *line = c;
    while (line > s->first && line[-1] != '\n')
        line--;
    if (s->r.bad < s->bad_room) {
        /* its line number in the block: newlines counted on from the last */
        for (const unsigned char *q = s->counted;
             (q = memchr(q, '\n', (size_t)(line - q))) != NULL; q++)
            s->before++;
        s->counted = line;
        int64_t pair[2] = {(int64_t)(line - s->base), (int64_t)s->before};
        memcpy(s->bad + sizeof pair * s->r.bad, pair, sizeof pair);
    }
    s->r.bad++;
}

static ALWAYS_INLINE void count_call(scanner *s, uint64_t key)
{
    s->r.calls++;
    if (table_add(s->t, key, 1))
        s->r.nomem = 1;
}

/* c is a 'C': an event's if "HV"/"SM" stand before it. Returns where a call
 * ends, else NULL. */
static ALWAYS_INLINE const unsigned char *at_c(scanner *s, const unsigned char *c)
{
    if (c - s->first < 2 || !((c[-2] == 'H' && c[-1] == 'V') || (c[-2] == 'S' && c[-1] == 'M')))
        return NULL;
    uint64_t key;
    const unsigned char *after = NULL;
    switch (parse_event(c, s->end, &key, &after)) {
    case CALL:
        count_call(s, key);
        return after;
    case MALFORMED:
        mark_malformed(s, c);
        break;
    default:
        break;
    }
    return NULL;
}

/* u is a '_': an event's name if "kvm_hvc"/"kvm_smc" stand before it and
 * "_arm64: " from it; then "HVC at 0x"/"SMC at 0x" must follow at once and
 * parse, else the line is malformed. Returns where a call ends, else NULL. */
static ALWAYS_INLINE const unsigned char *at_name(scanner *s, const unsigned char *u)
{
    if (u - s->first < 7 || s->end - u < 8 || memcmp(u, "_arm64: ", 8) != 0)
        return NULL;
    int smc = memcmp(u - 7, "kvm_smc", 7) == 0;
    if (!smc && memcmp(u - 7, "kvm_hvc", 7) != 0)
        return NULL;
    const unsigned char *c = u + 10; /* the 'C' of "HVC"/"SMC" */
    uint64_t key;
    const unsigned char *after = NULL;
    if (s->end - c >= 1 && memcmp(c - 2, smc ? "SMC" : "HVC", 3) == 0 &&
        parse_event(c, s->end, &key, &after) == CALL) {
        count_call(s, key);
        return after;
    }
    mark_malformed(s, u);
    return NULL;
}

static ALWAYS_INLINE const unsigned char *at_hit(scanner *s, const unsigned char *q)
{
    return *q == 'C' ? at_c(s, q) : at_name(s, q);
}

#if defined(HAVE_SSE2_LOOP) || defined(HAVE_AVX2_LOOP)
/* The anchors marked in m (bit i: p + i) of a step of `step` bytes at p: where
 * the next step starts. A call's text holds no newline and no other event, so
 * hits inside it are passed over, and a call that runs past this step is
 * stepped over whole. */
static ALWAYS_INLINE const unsigned char *take_hits(scanner *s, const unsigned char *p,
                                                    unsigned step, unsigned m)
{
    const unsigned char *next = p + step;
    while (m) {
        const unsigned char *after = at_hit(s, p + __builtin_ctz(m));
        m &= m - 1;
        if (after) {
            if (after >= next)
                return after;
            m &= ~0u << (after - p);
        }
    }
    return next;
}
#endif

/* The vector loops below take a block 16 or 32 bytes a step: newlines are
 * counted in byte lanes (summed before any lane can pass 255), and each 'C'
 * with ' ' after it and 'x' six on (the "C at 0x" of an event), and each '_'
 * with 'a' after it and ':' six on (the "_arm64:" of its name), is looked at.
 * Each stops where fewer bytes are left than a step reads, and returns where. */
#ifdef HAVE_SSE2_LOOP
static const unsigned char *scan_sse2(scanner *s, const unsigned char *p)
{
    const __m128i nl = _mm_set1_epi8('\n'), cc = _mm_set1_epi8('C');
    const __m128i sp = _mm_set1_epi8(' '), xx = _mm_set1_epi8('x'), zero = _mm_setzero_si128();
    const __m128i us = _mm_set1_epi8('_'), aa = _mm_set1_epi8('a'), co = _mm_set1_epi8(':');
    __m128i lanes = zero, sum;
    int steps = 0;
    while (s->end - p >= 16 + 6) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(v, nl));
        if (++steps == 255) {
            sum = _mm_sad_epu8(lanes, zero);
            s->r.lines += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_extract_epi16(sum, 4);
            lanes = zero;
            steps = 0;
        }
        __m128i v1 = _mm_loadu_si128((const __m128i *)(p + 1));
        __m128i v6 = _mm_loadu_si128((const __m128i *)(p + 6));
        __m128i hit = _mm_or_si128(
            _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(v, cc), _mm_cmpeq_epi8(v1, sp)),
                          _mm_cmpeq_epi8(v6, xx)),
            _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(v, us), _mm_cmpeq_epi8(v1, aa)),
                          _mm_cmpeq_epi8(v6, co)));
        p = take_hits(s, p, 16, (unsigned)_mm_movemask_epi8(hit));
    }
    sum = _mm_sad_epu8(lanes, zero);
    s->r.lines += (size_t)_mm_cvtsi128_si32(sum) + (size_t)_mm_extract_epi16(sum, 4);
    return p;
}
#endif

#ifdef HAVE_AVX2_LOOP
/* The same, 32 bytes a step, on CPUs with AVX2. */
__attribute__((target("avx2"))) static const unsigned char *scan_avx2(scanner *s,
                                                                      const unsigned char *p)
{
    const __m256i nl = _mm256_set1_epi8('\n'), cc = _mm256_set1_epi8('C');
    const __m256i sp = _mm256_set1_epi8(' '), xx = _mm256_set1_epi8('x');
    const __m256i us = _mm256_set1_epi8('_'), aa = _mm256_set1_epi8('a');
    const __m256i co = _mm256_set1_epi8(':'), zero = _mm256_setzero_si256();
    __m256i lanes = zero, sum;
    int steps = 0;
    while (s->end - p >= 32 + 6) {
        __m256i v = _mm256_loadu_si256((const __m256i *)p);
        lanes = _mm256_sub_epi8(lanes, _mm256_cmpeq_epi8(v, nl));
        if (++steps == 255) {
            sum = _mm256_sad_epu8(lanes, zero);
            s->r.lines += (size_t)(_mm256_extract_epi64(sum, 0) + _mm256_extract_epi64(sum, 1) +
                                   _mm256_extract_epi64(sum, 2) + _mm256_extract_epi64(sum, 3));
            lanes = zero;
            steps = 0;
        }
        __m256i v1 = _mm256_loadu_si256((const __m256i *)(p + 1));
        __m256i v6 = _mm256_loadu_si256((const __m256i *)(p + 6));
        __m256i hit = _mm256_or_si256(
            _mm256_and_si256(_mm256_and_si256(_mm256_cmpeq_epi8(v, cc), _mm256_cmpeq_epi8(v1, sp)),
                             _mm256_cmpeq_epi8(v6, xx)),
            _mm256_and_si256(_mm256_and_si256(_mm256_cmpeq_epi8(v, us), _mm256_cmpeq_epi8(v1, aa)),
                             _mm256_cmpeq_epi8(v6, co)));
        p = take_hits(s, p, 32, (unsigned)_mm256_movemask_epi8(hit));
    }
    sum = _mm256_sad_epu8(lanes, zero);
    s->r.lines += (size_t)(_mm256_extract_epi64(sum, 0) + _mm256_extract_epi64(sum, 1) +
                           _mm256_extract_epi64(sum, 2) + _mm256_extract_epi64(sum, 3));
    return p;
}

static int have_avx2;
#endif

static scan_result scan(const unsigned char *base, size_t start, size_t stop, table_t *t,
                        unsigned char *bad, size_t bad_room)
{
    scanner s = {base, base + start, base + stop, t, bad, bad_room, NULL, base + start, 0, {0}};
    const unsigned char *p = s.first;
#ifdef HAVE_AVX2_LOOP
    if (have_avx2)
        p = scan_avx2(&s, p);
#endif
#ifdef HAVE_SSE2_LOOP
    p = scan_sse2(&s, p);
#endif
    while (p < s.end) {
        const unsigned char *after;
        if (*p == '\n')
            s.r.lines++;
        else if ((*p == 'C' || *p == '_') && (after = at_hit(&s, p)) != NULL) {
            p = after;
            continue;
        }
        p++;
    }
    return s.r;
}

static void table_free(PyObject *capsule)
{
    table_t *t = PyCapsule_GetPointer(capsule, TABLE_CAPSULE);
    if (t) {
        free(t->slot);
        free(t);
    }
}

static PyObject *py_table(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    table_t *t = malloc(sizeof *t);
    if (!t || table_init(t, 1024)) {
        free(t);
        return PyErr_NoMemory();
    }
    PyObject *capsule = PyCapsule_New(t, TABLE_CAPSULE, table_free);
    if (!capsule) {
        free(t->slot);
        free(t);
    }
    return capsule;
}

static PyObject *py_scan(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer data, bad;
    Py_ssize_t start, stop;
    PyObject *capsule;
    if (!PyArg_ParseTuple(args, "y*nnOw*", &data, &start, &stop, &capsule, &bad))
        return NULL;
    PyObject *out = NULL;
    table_t *t = PyCapsule_GetPointer(capsule, TABLE_CAPSULE);
    if (!t)
        goto done;
    if (start < 0 || stop < start || stop > data.len) {
        PyErr_SetString(PyExc_ValueError, "start and stop must lie within the data");
        goto done;
    }
    if (bad.len % 16 != 0) {
        PyErr_SetString(PyExc_ValueError, "bad must hold pairs of 8-byte integers");
        goto done;
    }
    scan_result r;
    Py_BEGIN_ALLOW_THREADS
    r = scan(data.buf, (size_t)start, (size_t)stop, t, bad.buf, (size_t)bad.len / 16);
    Py_END_ALLOW_THREADS
    if (r.nomem)
        PyErr_NoMemory();
    else
        out = Py_BuildValue("nnn", (Py_ssize_t)r.lines, (Py_ssize_t)r.calls, (Py_ssize_t)r.bad);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&bad);
    return out;
}

static PyObject *py_counts(PyObject *self, PyObject *capsule)
{
    (void)self;
    table_t *t = PyCapsule_GetPointer(capsule, TABLE_CAPSULE);
    if (!t)
        return NULL;
    PyObject *out = PyDict_New();
    for (size_t i = 0; out && i < t->cap; i++) {
        if (t->slot[2 * i] == EMPTY)
            continue;
        PyObject *k = PyLong_FromUnsignedLongLong(t->slot[2 * i]);
        PyObject *v = PyLong_FromUnsignedLongLong(t->slot[2 * i + 1]);
        if (!k || !v || PyDict_SetItem(out, k, v))
            Py_CLEAR(out);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"table", py_table, METH_NOARGS, "table() -> an empty table of call counts"},
    {"scan", py_scan, METH_VARARGS,
     "scan(data, start, stop, table, bad) -> (lines, calls, malformed)\n\n"
     "Counts the calls in data[start:stop] (whole lines) into table; writes the\n"
     "offset and line (0 for the first) of its first malformed lines into bad,\n"
     "a writable buffer of int64 pairs."},
    {"counts", py_counts, METH_O, "counts(table) -> {call key: count}"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "gunyah._ftrace",
    .m_doc = "Compiled ftrace scanner for trace stats.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__ftrace(void)
{
#ifdef HAVE_AVX2_LOOP
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2");
#endif
    memset(hex_value, -1, sizeof hex_value);
    for (int i = 0; i < 10; i++)
        hex_value['0' + i] = (int8_t)i;
    for (int i = 0; i < 6; i++) {
        hex_value['a' + i] = (int8_t)(10 + i);
        hex_value['A' + i] = (int8_t)(10 + i);
    }
    return PyModule_Create(&module);
}
