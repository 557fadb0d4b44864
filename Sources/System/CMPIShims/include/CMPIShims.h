// OpenMPI handles and constants that are macros over global symbols, which Swift cannot
// import: each function returns exactly what the macro names.
#ifndef VAVL_CMPISHIMS_H
#define VAVL_CMPISHIMS_H

#include <mpi.h>

// MARK: - MPI
MPI_Comm vavl_mpi_comm_world(void);
MPI_Comm vavl_mpi_comm_self(void);
MPI_Datatype vavl_mpi_float(void);
MPI_Datatype vavl_mpi_double(void);
MPI_Datatype vavl_mpi_int64(void);
MPI_Datatype vavl_mpi_byte(void);
MPI_Op vavl_mpi_op_sum(void);
MPI_Op vavl_mpi_op_max(void);
MPI_Op vavl_mpi_op_min(void);
MPI_Errhandler vavl_mpi_errors_return(void);
MPI_Request vavl_mpi_request_null(void);
MPI_Status *vavl_mpi_status_ignore(void);
void *vavl_mpi_in_place(void);
int vavl_mpi_max_error_string(void);
int vavl_mpi_success(void);
int vavl_mpi_thread_funneled(void);

#endif
