// Whether ranks on one machine could sum the step's gradient block through an MPI-3 shared-memory
// window (MPI_Win_allocate_shared) faster than MPI_Allreduce: each rank puts its gradients in its own
// slot of the window, sums its 1/N of every slot (in rank order) after a barrier, and the update reads
// the sums. Each iteration is a stand-in step: 1.2 MB of other memory touched, the gradient block
// written, then read by an Adam-like update. The kinds run interleaved in blocks of 40 iterations, so
// that every kind sees the same phases of a shared machine; printed: the stand-in step alone, then
// each kind's extra time per step (medians and quartiles of the 80 blocks):
//   MPI_Allreduce (sum, in place), as mlpc's step runs it;
//   window, drop-in: the gradient copied into the rank's slot, each rank's 1/N summed into its own
//     slot, every 1/N copied back (what a RankGroup.sum over a window would do);
//   window, in place: the gradient written into the slot directly (the arena's gradient block would
//     live in the window) and the update reading each 1/N of the sums where its owner left it;
//   in place, gather: the same, but the other ranks' sums copied into the rank's own slot first, so
//     that the update reads one contiguous block as mlpc's optimizer kernels do;
//   in place, scatter: each rank writes its 1/N of the sums into every slot.
// The barriers spin on an atomic counter in the window.
// Build and run (Open MPI's compiler wrapper, from libopenmpi-dev):
//   mpicc -O2 -march=native scripts/shared-window-exchange.c -o /tmp/shared-window-exchange
//   mpirun --allow-run-as-root --oversubscribe -np 2 /tmp/shared-window-exchange [N=110816]
#include <mpi.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    _Atomic unsigned arrived, generation;
} barrier_word;

static void window_barrier(barrier_word *b, int ranks) {
    unsigned generation = atomic_load_explicit(&b->generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) == (unsigned)ranks - 1) {
        atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
        atomic_store_explicit(&b->generation, generation + 1, memory_order_release);
        return;
    }
    for (int spins = 0; atomic_load_explicit(&b->generation, memory_order_acquire) == generation;)
        if (++spins % 4000 == 0) sched_yield();
}

enum { KINDS = 6, BLOCKS = 80, PER_BLOCK = 40, OTHER_FLOATS = 300000 };

int main(int argc, char **argv) {
    MPI_Init(NULL, NULL);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int n = argc > 1 ? atoi(argv[1]) : 110816, chunk = (n + ranks - 1) / ranks;
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int node_size;
    MPI_Comm_size(node, &node_size);
    if (node_size != ranks) {
        if (rank == 0) fprintf(stderr, "the ranks are not all on one machine\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    size_t bytes = 4096 + (size_t)n * ranks * sizeof(float);
    char *base;
    MPI_Win window;
    MPI_Win_allocate_shared(rank == 0 ? bytes : 0, 1, MPI_INFO_NULL, node, &base, &window);
    MPI_Aint size;
    int unit;
    MPI_Win_shared_query(window, 0, &size, &unit, &base);
    barrier_word *barrier = (barrier_word *)base;
    float *slots = (float *)(base + 4096), *own = slots + (size_t)rank * n;
    if (rank == 0) memset(base, 0, bytes);
    MPI_Barrier(MPI_COMM_WORLD);

    float *gradient = aligned_alloc(64, (size_t)n * 4), *parameters = calloc(n, 4), *other = aligned_alloc(64, OTHER_FLOATS * 4);
    for (int i = 0; i < OTHER_FLOATS; i++) other[i] = i;
    static double seconds[BLOCKS][KINDS];
    for (int block = 0; block < BLOCKS; block++) {
        for (int kind = 0; kind < KINDS; kind++) {
            float *g = kind >= 3 ? own : gradient;
            MPI_Barrier(MPI_COMM_WORLD);
            double start = now();
            for (int step = 0; step < PER_BLOCK; step++) {
                // Every rank is done reading the slots (the last step's sums) before any writes its own.
                if (kind >= 2) window_barrier(barrier, ranks);
                for (int i = 0; i < OTHER_FLOATS; i++) other[i] = other[i] * 0.999f + 1.0f;
                for (int i = 0; i < n; i++) g[i] = (float)(i + step + rank);
                int lo = rank * chunk, hi = lo + chunk < n ? lo + chunk : n;
                if (kind == 0) MPI_Barrier(MPI_COMM_WORLD);
                if (kind == 1) MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                if (kind >= 2) {
                    if (kind == 2) memcpy(own, g, (size_t)n * 4);
                    window_barrier(barrier, ranks);
                    for (int i = lo; i < hi; i++) {
                        float sum = slots[i];
                        for (int r = 1; r < ranks; r++) sum += slots[(size_t)r * n + i];
                        if (kind == 5) for (int r = 0; r < ranks; r++) slots[(size_t)r * n + i] = sum; else own[i] = sum;
                    }
                    window_barrier(barrier, ranks);
                }
                if (kind == 2)
                    for (int r = 0; r < ranks; r++) {
                        int l = r * chunk, h = l + chunk < n ? l + chunk : n;
                        memcpy(g + l, slots + (size_t)r * n + l, (size_t)(h - l) * 4);
                    }
                if (kind == 4)
                    for (int r = 0; r < ranks; r++) {
                        int l = r * chunk, h = l + chunk < n ? l + chunk : n;
                        if (r != rank) memcpy(own + l, slots + (size_t)r * n + l, (size_t)(h - l) * 4);
                    }
                if (kind == 3)
                    for (int r = 0; r < ranks; r++) {
                        int l = r * chunk, h = l + chunk < n ? l + chunk : n;
                        const float *sums = slots + (size_t)r * n;
                        for (int i = l; i < h; i++) parameters[i] = parameters[i] * 0.9f + 0.001f * sums[i];
                    }
                else
                    for (int i = 0; i < n; i++) parameters[i] = parameters[i] * 0.9f + 0.001f * g[i];
            }
            seconds[block][kind] = (now() - start) / PER_BLOCK;
        }
    }
    if (rank == 0) {
        const char *names[KINDS] = {"stand-in step alone", "+ MPI_Allreduce", "+ window, drop-in", "+ window, in place", "+ in place, gather", "+ in place, scatter"};
        printf("%d floats on %d ranks, us per step:\n", n, ranks);
        for (int kind = 0; kind < KINDS; kind++) {
            double d[BLOCKS];
            for (int b = 0; b < BLOCKS; b++) d[b] = (kind ? seconds[b][kind] - seconds[b][0] : seconds[b][0]) * 1e6;
            for (int x = 0; x < BLOCKS; x++)
                for (int y = x + 1; y < BLOCKS; y++)
                    if (d[y] < d[x]) {
                        double t = d[x];
                        d[x] = d[y];
                        d[y] = t;
                    }
            printf("  %-22s median %6.1f (quartiles %6.1f, %6.1f)\n", names[kind], d[BLOCKS / 2], d[BLOCKS / 4], d[3 * BLOCKS / 4]);
        }
    }
    MPI_Win_free(&window);
    MPI_Finalize();
    return 0;
}
