#include "common.h"

static PyMethodDef methods[] = {
    {"describe", twins_describe, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_right", NULL, 0, methods};

PyMODINIT_FUNC
PyInit__right(void)
{
    return PyModuleDef_Init(&def);
}
