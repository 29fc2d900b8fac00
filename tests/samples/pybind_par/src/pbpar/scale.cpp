#include <vector>

std::vector<double> scaled(const std::vector<double> &values, double factor) {
    std::vector<double> out;
    out.reserve(values.size());
    for (double v : values) {
        out.push_back(v * factor);
    }
    return out;
}
