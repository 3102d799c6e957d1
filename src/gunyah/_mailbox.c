/*
 * The compiled serving loop of `gunyah boot`'s channel (boot/channel.py).
 *
 * It polls the vCPUs' mailboxes in the shim's memory without the GIL, and
 * takes the GIL only to have the model answer a call: the registers go to
 * `handle(regs, conduit, imm, cpu, pc)` as a list of 18 ints and come back from
 * it, the answer is written, then the call is kept in the ring as the
 * Python loop keeps it (the request's words, then X0..X7 of the answer).
 * What is not an ordinary call (a CPU_ON's outcome, a fault, a malformed
 * request) goes to `other(cpu, box)`, and a call that asks for an action to
 * `act(cpu, box, regs, action)`, both in Python, which write their own
 * answers. After an ordinary call, where the model's `pending` list of
 * interrupts raised in the guest is not empty, `irqs()` gives the answer's
 * irqs word (one look at a list's length on the hot path). Channel._serve_python is the same loop in Python, and the
 * reference for this one: the tests drive both.
 *
 * The mailbox's layout (struct mailbox, its word indexes MAILBOX_*, the
 * records' sizes) and MAX_CPUS come from boot/shim/layout.h, which
 * boot/layout.py generates: the shim includes the same file.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "boot/shim/layout.h"

#define HEADER_WORDS RECORD_HEADER_WORDS
#define REQ_SEQ MAILBOX_REQ_SEQ
#define RESP_SEQ MAILBOX_RESP_SEQ
#define REQ_AT MAILBOX_REQ
#define RESP_AT MAILBOX_RESP
#define MAX_CPUS SHIM_MAX_CPUS
#define RESULT_REGS 8          /* X0..X7 of the answer, kept in the ring (conduit.RESULT_REGS) */
#define CALL_BYTES ((RECORD_WORDS + RESULT_REGS) * 8)
#define SPINS_PER_LOOK 64

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct loop {
    volatile uint64_t *words;
    Py_ssize_t words_len;
    uint8_t *ring;
    uint64_t max_calls;
    uint64_t *count;
    PyObject *handle, *act, *other, *conduits[2];
    PyObject *pending, *irqs;   /* the interrupts raised, and what packs them */
};

/* One request, with the GIL: 0, or -1 with an exception set. */
static int answer(struct loop *l, Py_ssize_t cpu, Py_ssize_t box, uint64_t seq)
{
    volatile uint64_t *w = l->words;
    uint64_t req[RECORD_WORDS], out[NUM_REGS];
    PyObject *regs, *result;
    int i;

    for (i = 0; i < RECORD_WORDS; i++)
        req[i] = w[box + REQ_AT + i];
    if (req[1] > REQ_SMC || req[2] > 0xffff) {
        result = PyObject_CallFunction(l->other, "nn", cpu, box);
        if (result == NULL)
            return -1;
        Py_DECREF(result);
        __atomic_store_n(&w[box + RESP_SEQ], seq, __ATOMIC_RELEASE);
        return 0;
    }
    regs = PyList_New(NUM_REGS);
    if (regs == NULL)
        return -1;
    for (i = 0; i < NUM_REGS; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(req[HEADER_WORDS + i]);
        if (v == NULL) {
            Py_DECREF(regs);
            return -1;
        }
        PyList_SET_ITEM(regs, i, v);
    }
    {
        PyObject *imm = PyLong_FromUnsignedLongLong(req[2]);
        PyObject *who = PyLong_FromSsize_t(cpu);
        PyObject *pc = PyLong_FromUnsignedLongLong(req[3]);
        result = imm && who && pc
                     ? PyObject_CallFunctionObjArgs(l->handle, regs, l->conduits[req[1]], imm,
                                                    who, pc, NULL)
                     : NULL;
        Py_XDECREF(imm);
        Py_XDECREF(who);
        Py_XDECREF(pc);
    }
    if (result == NULL)
        goto fail;
    for (i = 0; i < NUM_REGS; i++) {  /* as struct.pack: anything but a 64-bit word is an error */
        out[i] = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(regs, i));
        if (out[i] == (uint64_t)-1 && PyErr_Occurred())
            goto fail;
    }
    if (result == Py_None) {
        uint64_t irqs = 0;
        if (PyList_GET_SIZE(l->pending) > 0) {
            PyObject *word = PyObject_CallNoArgs(l->irqs);
            if (word == NULL)
                goto fail;
            irqs = PyLong_AsUnsignedLongLong(word);
            Py_DECREF(word);
            if (irqs == (uint64_t)-1 && PyErr_Occurred())
                goto fail;
        }
        for (i = 0; i < HEADER_WORDS; i++)
            w[box + RESP_AT + i] = 0;
        w[box + RESP_AT + RESPONSE_IRQS] = irqs;
        for (i = 0; i < NUM_REGS; i++)
            w[box + RESP_AT + HEADER_WORDS + i] = out[i];
    } else {
        PyObject *done = PyObject_CallFunction(l->act, "nnOO", cpu, box, regs, result);
        if (done == NULL)
            goto fail;
        Py_DECREF(done);
    }
    Py_DECREF(result);
    Py_DECREF(regs);
    __atomic_store_n(&w[box + RESP_SEQ], seq, __ATOMIC_RELEASE);
    {
        uint8_t *slot = l->ring + (*l->count % l->max_calls) * CALL_BYTES;
        memcpy(slot, req, sizeof req);
        memcpy(slot + sizeof req, out, RESULT_REGS * 8);
        *l->count += 1;
    }
    return 0;
fail:
    Py_XDECREF(result);
    Py_DECREF(regs);
    return -1;
}

PyDoc_STRVAR(serve_doc,
"serve(mailboxes, boxes, handle, act, other, ring, count, stop, poll, wake,\n"
"      pending, irqs)\n"
"Serve the mailboxes (a writable buffer of 64-bit words; `boxes` the word\n"
"index of each vCPU's mailbox) until the first word of `stop` is not 0.\n"
"Calls are kept in `ring` (slots of 256 bytes) and counted in `count`'s\n"
"first word. After each answer it polls for `poll` seconds, then sleeps\n"
"between looks, at most `wake` seconds. Where the list `pending` is not\n"
"empty after an ordinary call, `irqs()` gives its answer's irqs word.");

static PyObject *serve(PyObject *self, PyObject *args)
{
    Py_buffer mb, ring, count, stop;
    PyObject *boxes_obj, *handle, *act, *other, *seq_obj, *pending, *irqs;
    double poll, wake;
    Py_ssize_t boxes[MAX_CPUS], cpus, cpu;
    struct loop l;
    PyThreadState *ts;
    double last;
    unsigned spins = 0;
    int failed = 0;

    (void)self;
    if (!PyArg_ParseTuple(args, "w*OOOOw*w*w*ddO!O", &mb, &boxes_obj, &handle, &act, &other,
                          &ring, &count, &stop, &poll, &wake, &PyList_Type, &pending, &irqs))
        return NULL;
    seq_obj = PySequence_Fast(boxes_obj, "boxes must be a sequence");
    if (seq_obj == NULL)
        goto release;
    cpus = PySequence_Fast_GET_SIZE(seq_obj);
    if (cpus < 1 || cpus > MAX_CPUS || ring.len < CALL_BYTES || ring.len % CALL_BYTES
        || count.len < 8 || stop.len < 8) {
        PyErr_SetString(PyExc_ValueError, "serve: bad sizes");
        goto release_seq;
    }
    for (cpu = 0; cpu < cpus; cpu++) {
        boxes[cpu] = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq_obj, cpu));
        if (boxes[cpu] == -1 && PyErr_Occurred())
            goto release_seq;
        if (boxes[cpu] < 0 || (boxes[cpu] + RESP_AT + RECORD_WORDS) * 8 > mb.len) {
            PyErr_SetString(PyExc_ValueError, "serve: a mailbox outside the buffer");
            goto release_seq;
        }
    }
    l.words = mb.buf;
    l.words_len = mb.len / 8;
    l.ring = ring.buf;
    l.max_calls = (uint64_t)(ring.len / CALL_BYTES);
    l.count = count.buf;
    l.handle = handle;
    l.act = act;
    l.other = other;
    l.pending = pending;
    l.irqs = irqs;
    l.conduits[0] = PyUnicode_InternFromString("hvc");
    l.conduits[1] = PyUnicode_InternFromString("smc");
    if (l.conduits[0] == NULL || l.conduits[1] == NULL)
        goto release_conduits;

    ts = PyEval_SaveThread();
    last = monotonic();
    for (;;) {
        for (cpu = 0; cpu < cpus; cpu++) {
            /* answered: its response's number is its request's (a request
             * posted before this loop began is served all the same, and one
             * a run's wait answered, Channel.run_world, is not again) */
            uint64_t seq = __atomic_load_n(&l.words[boxes[cpu] + REQ_SEQ], __ATOMIC_ACQUIRE);
            if (seq == l.words[boxes[cpu] + RESP_SEQ])
                continue;
            PyEval_RestoreThread(ts);
            failed = answer(&l, cpu, boxes[cpu], seq) < 0;
            ts = PyEval_SaveThread();
            if (failed)
                goto stopped;
            last = monotonic();
            spins = 0;
        }
        if (++spins < SPINS_PER_LOOK)
            continue;
        spins = 0;
        if (__atomic_load_n((uint64_t *)stop.buf, __ATOMIC_ACQUIRE))
            break;
        double quiet = monotonic() - last;
        if (quiet > poll) {
            double nap = quiet / 4 < wake ? quiet / 4 : wake;
            struct timespec t = {0, (long)(nap * 1e9)};
            nanosleep(&t, NULL);
        }
    }
stopped:
    PyEval_RestoreThread(ts);
release_conduits:
    Py_XDECREF(l.conduits[0]);
    Py_XDECREF(l.conduits[1]);
release_seq:
    Py_DECREF(seq_obj);
release:
    PyBuffer_Release(&mb);
    PyBuffer_Release(&ring);
    PyBuffer_Release(&count);
    PyBuffer_Release(&stop);
    if (failed || PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS, serve_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mailbox",
    "The compiled serving loop of gunyah boot's channel.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mailbox(void)
{
    return PyModule_Create(&module);
}
