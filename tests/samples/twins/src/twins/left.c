#include "common.h"

static PyMethodDef methods[] = {
    {"describe", twins_describe, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_left", NULL, 0, methods};

PyMODINIT_FUNC
PyInit__left(void)
{
    return PyModuleDef_Init(&def);
}
