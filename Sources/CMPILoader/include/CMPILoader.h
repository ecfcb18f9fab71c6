#ifndef MLPC_CMPILOADER_H
#define MLPC_CMPILOADER_H

// The few MPI calls data-parallel training makes, on Open MPI's libmpi opened with dlopen when a
// process runs under mpirun: mlpc's executable links no MPI library, so a single-process mlpc (check,
// plan, run) neither needs MPI installed nor pays for loading it. Open MPI's handles (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM, ...) are macros over the addresses of its global objects (mpi.h:
// OMPI_PREDEFINED_GLOBAL), so the shim resolves those symbols with dlsym; no MPI header is needed to
// build this target. The handle symbols are Open MPI's ABI (libmpi.so.40, Open MPI 3 to 5); MPICH's
// integer handles are not supported.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The element types and reductions mlpc uses.
typedef enum { MLPC_MPI_FLOAT = 0, MLPC_MPI_DOUBLE = 1, MLPC_MPI_INT32 = 2, MLPC_MPI_BYTE = 3 } mlpc_mpi_type;

/// The file name tried first ("libmpi.so.40" on Linux), for messages.
const char *mlpc_mpi_library_name(void);

/// Opens libmpi, resolves what mlpc calls and runs MPI_Init (once per process). Returns 0, or -1
/// with the reason in `error`.
int mlpc_mpi_init(char *error, size_t error_capacity);

/// MPI_COMM_WORLD's rank and size (after mlpc_mpi_init).
int mlpc_mpi_rank(void);
int mlpc_mpi_size(void);

/// In-place sum over every rank of `count` elements of `type` (MPI_Allreduce with MPI_IN_PLACE).
int mlpc_mpi_allreduce_sum(void *buffer, size_t count, mlpc_mpi_type type);

/// Starts the in-place sum without waiting (MPI_Iallreduce); mlpc_mpi_wait finishes it.
int mlpc_mpi_iallreduce_sum(void *buffer, size_t count, mlpc_mpi_type type, void **request);
int mlpc_mpi_wait(void **request);

/// `bytes` bytes of `buffer` from rank `root` to every rank (MPI_Bcast of MPI_BYTE).
int mlpc_mpi_broadcast(void *buffer, size_t bytes, int root);

/// Every rank's `bytes` bytes of `send`, rank by rank, into `receive` (MPI_Allgather of MPI_BYTE).
int mlpc_mpi_allgather(const void *send, size_t bytes, void *receive);

int mlpc_mpi_barrier(void);

/// MPI_Finalize (collective: only when every rank gets there).
int mlpc_mpi_finalize(void);

/// MPI_Abort on MPI_COMM_WORLD: ends every rank of the job with `status`.
void mlpc_mpi_abort(int status);

#ifdef __cplusplus
}
#endif

#endif
