/*
 * The compiled trap hook of the vCPU (vcpu/engine.py).
 *
 * Unicorn calls it for every exception the guest takes. For HVC and SMC it
 * reads X0..X17 and PC into the run's register array with one batch call,
 * reads the immediate from the trapping instruction, hands the array to the
 * model as `handle(regs, conduit, imm, 0, pc)`, writes X0..X17 back with one
 * batch call and keeps the call as `record((seq, pc, conduit, imm, before,
 * after))`. A call that asks for an action goes to `act(action)`; every other
 * exception to `other(intno)`. An exception raised by any of them is kept in
 * `error` and the engine is stopped: it is an error of ours, not the guest's.
 *
 * This is the Python hook of engine.py in C; that hook is the reference for
 * this one, and the tests drive both. The engine's entry points come in as
 * addresses that Python looked up in the library the binding loaded, and the
 * register numbers from the binding's constants, so nothing here links
 * against Unicorn or repeats its numbering.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>

#define NUM_REGS 18
#define EXCP_HVC 11
#define EXCP_SMC 13

typedef int (*batch_fn)(void *uc, int *ids, void **vals, int count);
typedef int (*mem_read_fn)(void *uc, uint64_t address, void *bytes, uint64_t size);
typedef int (*stop_fn)(void *uc);

typedef struct {
    PyObject_HEAD
    batch_fn read_batch, write_batch;
    mem_read_fn mem_read;
    stop_fn emu_stop;
    uint64_t *regs;       /* X0..X17, the memory of `array` */
    uint64_t pc;
    int ids[NUM_REGS + 1];
    void *ptrs[NUM_REGS + 1];
    unsigned long long seq;
    PyObject *array, *handle, *record, *act, *other, *kinds[2], *zero, *error;
} Hook;

/* The work of one exception, with the GIL: 0, or -1 with an exception set. */
static int trap(Hook *h, void *uc, uint32_t intno)
{
    PyObject *args[5], *before, *after, *result, *pc, *imm, *seq, *kept, *done;
    uint32_t insn;

    if (intno != EXCP_HVC && intno != EXCP_SMC) {
        done = PyObject_CallFunction(h->other, "I", intno);
        Py_XDECREF(done);
        return done ? 0 : -1;
    }
    if (h->read_batch(uc, h->ids, h->ptrs, NUM_REGS + 1) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "the engine could not read the registers");
        return -1;
    }
    h->pc -= 4;
    if (h->mem_read(uc, h->pc, &insn, 4) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "the engine could not read the trapping instruction");
        return -1;
    }
    before = PyBytes_FromStringAndSize((const char *)h->regs, NUM_REGS * 8);
    pc = PyLong_FromUnsignedLongLong(h->pc);
    imm = PyLong_FromUnsignedLong(insn >> 5 & 0xffff);
    if (before == NULL || pc == NULL || imm == NULL) {
        result = NULL;
        goto out;
    }
    args[0] = h->array;
    args[1] = h->kinds[intno == EXCP_SMC];
    args[2] = imm;
    args[3] = h->zero;
    args[4] = pc;
    result = PyObject_Vectorcall(h->handle, args, 5, NULL);
    if (result == NULL)
        goto out;
    if (h->write_batch(uc, h->ids, h->ptrs, NUM_REGS) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "the engine could not write the registers");
        Py_CLEAR(result);
        goto out;
    }
    after = PyBytes_FromStringAndSize((const char *)h->regs, NUM_REGS * 8);
    seq = PyLong_FromUnsignedLongLong(h->seq++);
    kept = after && seq ? PyTuple_Pack(6, seq, pc, args[1], imm, before, after) : NULL;
    Py_XDECREF(after);
    Py_XDECREF(seq);
    done = kept ? PyObject_CallOneArg(h->record, kept) : NULL;
    Py_XDECREF(kept);
    if (done == NULL) {
        Py_CLEAR(result);
        goto out;
    }
    Py_DECREF(done);
    if (result != Py_None) {
        done = PyObject_CallOneArg(h->act, result);
        Py_XDECREF(done);
        if (done == NULL)
            Py_CLEAR(result);
    }
out:
    Py_XDECREF(before);
    Py_XDECREF(pc);
    Py_XDECREF(imm);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* What Unicorn calls (UC_HOOK_INTR), on the engine's thread. */
static void on_intr(void *uc, uint32_t intno, void *data)
{
    Hook *h = data;
    PyGILState_STATE gil = PyGILState_Ensure();

    if (h->error == NULL && trap(h, uc, intno) != 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb != NULL)
            PyException_SetTraceback(value, tb);
        h->error = value;
        Py_XDECREF(type);
        Py_XDECREF(tb);
        h->emu_stop(uc);
    }
    PyGILState_Release(gil);
}

static int Hook_init(Hook *h, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"functions", "ids", "array", "handle", "record", "act", "other",
                            NULL};
    unsigned long long read, write, mem_read, stop;
    int x0, pc;
    PyObject *array, *handle, *record, *act, *other;
    Py_buffer view;
    int i;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "(KKKK)(ii)OOOOO", names, &read, &write,
                                     &mem_read, &stop, &x0, &pc, &array, &handle, &record,
                                     &act, &other))
        return -1;
    if (!read || !write || !mem_read || !stop) {
        PyErr_SetString(PyExc_ValueError, "every engine function needs an address");
        return -1;
    }
    if (PyObject_GetBuffer(array, &view, PyBUF_WRITABLE) != 0)
        return -1;
    if (view.len != NUM_REGS * 8) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the register array must hold X0..X17");
        return -1;
    }
    /* the array keeps its memory while we hold it (a ctypes array never moves) */
    h->regs = view.buf;
    PyBuffer_Release(&view);
    h->read_batch = (batch_fn)(uintptr_t)read;
    h->write_batch = (batch_fn)(uintptr_t)write;
    h->mem_read = (mem_read_fn)(uintptr_t)mem_read;
    h->emu_stop = (stop_fn)(uintptr_t)stop;
    for (i = 0; i < NUM_REGS; i++) {
        h->ids[i] = x0 + i;
        h->ptrs[i] = &h->regs[i];
    }
    h->ids[NUM_REGS] = pc;
    h->ptrs[NUM_REGS] = &h->pc;
    Py_INCREF(array);
    Py_XSETREF(h->array, array);
    Py_INCREF(handle);
    Py_XSETREF(h->handle, handle);
    Py_INCREF(record);
    Py_XSETREF(h->record, record);
    Py_INCREF(act);
    Py_XSETREF(h->act, act);
    Py_INCREF(other);
    Py_XSETREF(h->other, other);
    Py_XSETREF(h->kinds[0], PyUnicode_InternFromString("hvc"));
    Py_XSETREF(h->kinds[1], PyUnicode_InternFromString("smc"));
    Py_XSETREF(h->zero, PyLong_FromLong(0));
    if (!h->kinds[0] || !h->kinds[1] || !h->zero)
        return -1;
    return 0;
}

static int Hook_traverse(Hook *h, visitproc visit, void *arg)
{
    Py_VISIT(h->array);
    Py_VISIT(h->handle);
    Py_VISIT(h->record);
    Py_VISIT(h->act);
    Py_VISIT(h->other);
    Py_VISIT(h->error);
    return 0;
}

static int Hook_clear(Hook *h)
{
    Py_CLEAR(h->array);
    Py_CLEAR(h->handle);
    Py_CLEAR(h->record);
    Py_CLEAR(h->act);
    Py_CLEAR(h->other);
    Py_CLEAR(h->kinds[0]);
    Py_CLEAR(h->kinds[1]);
    Py_CLEAR(h->zero);
    Py_CLEAR(h->error);
    return 0;
}

static void Hook_dealloc(Hook *h)
{
    PyObject_GC_UnTrack(h);
    Hook_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *Hook_get_callback(Hook *h, void *closure)
{
    return PyLong_FromVoidPtr((void *)on_intr);
}

static PyObject *Hook_get_data(Hook *h, void *closure)
{
    return PyLong_FromVoidPtr(h);
}

static PyObject *Hook_get_error(Hook *h, void *closure)
{
    return Py_NewRef(h->error ? h->error : Py_None);
}

static PyGetSetDef Hook_getset[] = {
    {"callback", (getter)Hook_get_callback, NULL, "address of the UC_HOOK_INTR function", NULL},
    {"data", (getter)Hook_get_data, NULL, "the user data to register it with", NULL},
    {"error", (getter)Hook_get_error, NULL, "what a callback raised, or None", NULL},
    {NULL},
};

static PyTypeObject HookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gunyah._vcpu.Hook",
    .tp_doc = "The vCPU's trap hook: register `callback` with `data` as UC_HOOK_INTR.",
    .tp_basicsize = sizeof(Hook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Hook_init,
    .tp_traverse = (traverseproc)Hook_traverse,
    .tp_clear = (inquiry)Hook_clear,
    .tp_dealloc = (destructor)Hook_dealloc,
    .tp_getset = Hook_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_vcpu", "The vCPU's compiled trap hook.", -1, NULL,
};

PyMODINIT_FUNC PyInit__vcpu(void)
{
    PyObject *m;

    if (PyType_Ready(&HookType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Hook", (PyObject *)&HookType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
