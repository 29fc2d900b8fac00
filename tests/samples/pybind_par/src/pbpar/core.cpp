#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

std::vector<double> scaled(const std::vector<double> &values, double factor);

PYBIND11_MODULE(_core, m) {
    m.def("add", [](int a, int b) { return a + b; });
    m.def("scaled", &scaled);
}
