"""Pure kernels over Arrow and numpy: no I/O. Columns, the category registry, the checksum and
the aligned walk of sorted streams; the ops (workload/ops) are built from them."""
