// C++17 extension, multi-phase init without any slots (m_slots is NULL).
#include <Python.h>
#include <optional>
#include <string>

static PyObject *greet(PyObject *, PyObject *) {
    std::optional<std::string> text{"hello from C++17"};
    return PyUnicode_FromString(text->c_str());
}

static PyMethodDef cpp_methods[] = {{"greet", greet, METH_NOARGS, nullptr}, {nullptr, nullptr, 0, nullptr}};
static PyModuleDef cpp_def = {PyModuleDef_HEAD_INIT, "spine._cpp", nullptr, 0, cpp_methods};

PyMODINIT_FUNC PyInit__cpp(void) {
    return PyModuleDef_Init(&cpp_def);
}
