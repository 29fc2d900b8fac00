/* An ordinary shared library: no PyInit_ entry point. */
int fixture_add(int a, int b) { return a + b; }
const char *fixture_name = "plainlib";
