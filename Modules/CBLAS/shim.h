#ifndef BACKPROP_CBLAS_SHIM_H
#define BACKPROP_CBLAS_SHIM_H
// OpenBLAS's CBLAS interface (cblas_sgemm, openblas_set_num_threads, ...) and LAPACKE.
// Debian builds OpenBLAS without LAPACKE, so liblapacke is linked separately (see module.modulemap).
#include <cblas.h>
#include <lapacke.h>
#endif
