#include "CMPIShims.h"

MPI_Comm vavl_mpi_comm_world(void) { return MPI_COMM_WORLD; }
MPI_Comm vavl_mpi_comm_self(void) { return MPI_COMM_SELF; }
MPI_Datatype vavl_mpi_float(void) { return MPI_FLOAT; }
MPI_Datatype vavl_mpi_double(void) { return MPI_DOUBLE; }
MPI_Datatype vavl_mpi_int64(void) { return MPI_INT64_T; }
MPI_Datatype vavl_mpi_byte(void) { return MPI_BYTE; }
MPI_Op vavl_mpi_op_sum(void) { return MPI_SUM; }
MPI_Op vavl_mpi_op_max(void) { return MPI_MAX; }
MPI_Op vavl_mpi_op_min(void) { return MPI_MIN; }
MPI_Errhandler vavl_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
MPI_Request vavl_mpi_request_null(void) { return MPI_REQUEST_NULL; }
MPI_Status *vavl_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
void *vavl_mpi_in_place(void) { return MPI_IN_PLACE; }
int vavl_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
int vavl_mpi_success(void) { return MPI_SUCCESS; }
int vavl_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
