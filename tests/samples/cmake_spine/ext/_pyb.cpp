// A pybind11 module with no free-threading option of its own: the declaration comes from
// [tool.nogil] through nogil_declare().
#include <pybind11/pybind11.h>

#include <string>

namespace py = pybind11;

PYBIND11_MODULE(_pyb, m) {
    m.def("greet", [](const std::string &name) { return "hello " + name + " from pybind11"; });
}
