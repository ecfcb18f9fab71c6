#include "CMPILoader.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

// Open MPI's ABI as mpi.h declares it: handles are pointers to library globals, MPI_IN_PLACE is
// (void *) 1, MPI_STATUS_IGNORE is a null pointer, MPI_SUCCESS is 0, MPI_THREAD_FUNNELED is 1.
typedef void *mpi_handle;
#define MPI_IN_PLACE_VALUE ((void *)1)
enum { MPI_SUCCESS_VALUE = 0, MPI_THREAD_FUNNELED_VALUE = 1 };

static struct {
    void *library;
    int (*init_thread)(int *argc, char ***argv, int required, int *provided);
    int (*initialized)(int *flag);
    int (*comm_rank)(mpi_handle comm, int *rank);
    int (*comm_size)(mpi_handle comm, int *size);
    int (*allreduce)(const void *send, void *receive, int count, mpi_handle type, mpi_handle op, mpi_handle comm);
    int (*iallreduce)(const void *send, void *receive, int count, mpi_handle type, mpi_handle op, mpi_handle comm,
                      mpi_handle *request);
    int (*wait)(mpi_handle *request, void *status);
    int (*bcast)(void *buffer, int count, mpi_handle type, int root, mpi_handle comm);
    int (*allgather)(const void *send, int send_count, mpi_handle send_type, void *receive, int receive_count,
                     mpi_handle receive_type, mpi_handle comm);
    int (*barrier)(mpi_handle comm);
    int (*finalize)(void);
    int (*abort)(mpi_handle comm, int status);
    mpi_handle comm_world, type_float, type_double, type_int, type_byte, op_sum;
    int rank, size, ready;
    char error[512];
} mpi;

#if defined(__APPLE__)
static const char *const library_names[] = {"libmpi.40.dylib", "/opt/homebrew/lib/libmpi.40.dylib", "/usr/local/lib/libmpi.40.dylib"};
#else
// Debian's libopenmpi3 ships the versioned name; the unversioned one comes with libopenmpi-dev.
static const char *const library_names[] = {"libmpi.so.40", "libmpi.so"};
#endif

const char *mlpc_mpi_library_name(void) { return library_names[0]; }

static void set_error(const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(mpi.error, sizeof mpi.error, format, arguments);
    va_end(arguments);
}

static void *resolve(const char *name, int *missing) {
    void *symbol = dlsym(mpi.library, name);
    if (symbol == NULL && !*missing) {
        set_error("%s has no symbol %s (it is not Open MPI's libmpi)", library_names[0], name);
        *missing = 1;
    }
    return symbol;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void open_and_init(void) {
    set_error("no library name given");
    for (size_t index = 0; index < sizeof library_names / sizeof library_names[0] && mpi.library == NULL; index++) {
        // RTLD_GLOBAL: Open MPI's components (its plugins) are opened by libmpi and resolve its symbols.
        mpi.library = dlopen(library_names[index], RTLD_NOW | RTLD_GLOBAL);
        if (mpi.library == NULL) {
            // The reason for the first name, the runtime package's: the later names are fallbacks.
            const char *reason = dlerror();
            if (index == 0) set_error("%s", reason != NULL ? reason : library_names[index]);
        }
    }
    if (mpi.library == NULL) return;
    int missing = 0;
    // dlsym returns object pointers; the conversion to function pointers is the one POSIX shows.
    *(void **)&mpi.init_thread = resolve("MPI_Init_thread", &missing);
    *(void **)&mpi.initialized = resolve("MPI_Initialized", &missing);
    *(void **)&mpi.comm_rank = resolve("MPI_Comm_rank", &missing);
    *(void **)&mpi.comm_size = resolve("MPI_Comm_size", &missing);
    *(void **)&mpi.allreduce = resolve("MPI_Allreduce", &missing);
    *(void **)&mpi.iallreduce = resolve("MPI_Iallreduce", &missing);
    *(void **)&mpi.wait = resolve("MPI_Wait", &missing);
    *(void **)&mpi.bcast = resolve("MPI_Bcast", &missing);
    *(void **)&mpi.allgather = resolve("MPI_Allgather", &missing);
    *(void **)&mpi.barrier = resolve("MPI_Barrier", &missing);
    *(void **)&mpi.finalize = resolve("MPI_Finalize", &missing);
    *(void **)&mpi.abort = resolve("MPI_Abort", &missing);
    // The handles are the globals' addresses (mpi.h: OMPI_PREDEFINED_GLOBAL).
    mpi.comm_world = resolve("ompi_mpi_comm_world", &missing);
    mpi.type_float = resolve("ompi_mpi_float", &missing);
    mpi.type_double = resolve("ompi_mpi_double", &missing);
    mpi.type_int = resolve("ompi_mpi_int", &missing);
    mpi.type_byte = resolve("ompi_mpi_byte", &missing);
    mpi.op_sum = resolve("ompi_mpi_op_sum", &missing);
    if (missing) return;
    int provided = 0;
    // Funneled: only the thread that called init makes MPI calls (the worker pool's threads never do).
    if (mpi.init_thread(NULL, NULL, MPI_THREAD_FUNNELED_VALUE, &provided) != MPI_SUCCESS_VALUE) {
        set_error("MPI_Init_thread failed");
        return;
    }
    if (mpi.comm_rank(mpi.comm_world, &mpi.rank) != MPI_SUCCESS_VALUE
        || mpi.comm_size(mpi.comm_world, &mpi.size) != MPI_SUCCESS_VALUE) {
        set_error("MPI_Comm_rank or MPI_Comm_size failed");
        return;
    }
    mpi.ready = 1;
}

int mlpc_mpi_init(char *error, size_t error_capacity) {
    pthread_once(&init_once, open_and_init);
    if (mpi.ready) return 0;
    if (error != NULL && error_capacity > 0) snprintf(error, error_capacity, "%s", mpi.error);
    return -1;
}

int mlpc_mpi_rank(void) { return mpi.rank; }
int mlpc_mpi_size(void) { return mpi.size; }

static mpi_handle type_handle(mlpc_mpi_type type) {
    switch (type) {
    case MLPC_MPI_FLOAT: return mpi.type_float;
    case MLPC_MPI_DOUBLE: return mpi.type_double;
    case MLPC_MPI_INT32: return mpi.type_int;
    case MLPC_MPI_BYTE: return mpi.type_byte;
    }
    return mpi.type_byte;
}

// MPI counts are ints; callers keep below INT_MAX (a parameter block of 2^31 floats is 8 GiB).
int mlpc_mpi_allreduce_sum(void *buffer, size_t count, mlpc_mpi_type type) {
    if (!mpi.ready || count > INT_MAX) return -1;
    return mpi.allreduce(MPI_IN_PLACE_VALUE, buffer, (int)count, type_handle(type), mpi.op_sum, mpi.comm_world);
}

int mlpc_mpi_iallreduce_sum(void *buffer, size_t count, mlpc_mpi_type type, void **request) {
    if (!mpi.ready || count > INT_MAX) return -1;
    return mpi.iallreduce(MPI_IN_PLACE_VALUE, buffer, (int)count, type_handle(type), mpi.op_sum, mpi.comm_world, request);
}

int mlpc_mpi_wait(void **request) {
    if (!mpi.ready) return -1;
    return mpi.wait(request, NULL);
}

int mlpc_mpi_broadcast(void *buffer, size_t bytes, int root) {
    if (!mpi.ready || bytes > INT_MAX) return -1;
    return mpi.bcast(buffer, (int)bytes, mpi.type_byte, root, mpi.comm_world);
}

int mlpc_mpi_allgather(const void *send, size_t bytes, void *receive) {
    if (!mpi.ready || bytes > INT_MAX) return -1;
    return mpi.allgather(send, (int)bytes, mpi.type_byte, receive, (int)bytes, mpi.type_byte, mpi.comm_world);
}

int mlpc_mpi_barrier(void) {
    if (!mpi.ready) return -1;
    return mpi.barrier(mpi.comm_world);
}

int mlpc_mpi_finalize(void) {
    if (!mpi.ready) return -1;
    mpi.ready = 0;
    return mpi.finalize();
}

void mlpc_mpi_abort(int status) {
    if (mpi.library != NULL && mpi.abort != NULL && mpi.comm_world != NULL) mpi.abort(mpi.comm_world, status);
    _Exit(status);
}
