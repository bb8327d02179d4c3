#ifndef BACKPROP_CMPI_SHIM_H
#define BACKPROP_CMPI_SHIM_H
// MPI for BackpropMPI. Swift imports MPI's functions and handle types but not its handle macros (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ...), which are casts of global symbols in Open MPI and integer constants in
// MPICH; these inline functions return them, for either implementation. No stable API.
#include <mpi.h>

static inline MPI_Comm bp_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype bp_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype bp_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype bp_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Op bp_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op bp_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op bp_mpi_max(void) { return MPI_MAX; }
static inline void *bp_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int bp_mpi_success(void) { return MPI_SUCCESS; }

#endif
