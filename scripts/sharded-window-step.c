// Whether ranks on one machine would step faster with the optimizer split between them through an
// MPI-3 shared-memory window (MPI_Win_allocate_shared) instead of replicated after an allreduce. A
// stand-in step: a forward pass reading every parameter, 1.2 MB of other memory touched, the gradient
// block written, then Adam (moments m and v). Three kinds, interleaved in blocks of 40 steps so that
// every kind sees the same phases of a shared machine; printed: the step alone (Adam over all
// parameters), then each kind's extra time per step (medians and quartiles of 80 blocks):
//   MPI_Allreduce of the gradients, then Adam over all parameters on every rank (what mlpc does);
//   sharded in the window: the parameters and each rank's gradients live in the window; after a
//     barrier each rank sums its 1/N of the gradients over every slot and runs Adam on its 1/N only,
//     writing those parameters where every rank's next forward pass reads them; a second barrier.
// Build and run (Open MPI's compiler wrapper, from libopenmpi-dev):
//   mpicc -O3 -march=native -fno-math-errno scripts/sharded-window-step.c -o /tmp/sharded-window-step -lm
//   mpirun --allow-run-as-root --oversubscribe -np 2 /tmp/sharded-window-step
#include <mpi.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
typedef struct { _Atomic unsigned arrived, generation; } barrier_word;
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
enum { KINDS = 3, BLOCKS = 80, PER_BLOCK = 40, OTHER_FLOATS = 300000 };
static void adam(float *p, const float *g, float *m, float *v, int lo, int hi) {
    for (int i = lo; i < hi; i++) {
        m[i] = 0.9f * m[i] + 0.1f * g[i];
        v[i] = 0.999f * v[i] + 0.001f * g[i] * g[i];
        p[i] -= 0.001f * m[i] / (sqrtf(v[i]) + 1e-8f);
    }
}
int main(int argc, char **argv) {
    MPI_Init(NULL, NULL);
    int rank, ranks; MPI_Comm_rank(MPI_COMM_WORLD, &rank); MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int n = 110816, chunk = (n + ranks - 1) / ranks;
    MPI_Comm node; MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    size_t bytes = 4096 + (size_t)n * (ranks + 1) * 4;
    char *base; MPI_Win window;
    MPI_Win_allocate_shared(rank == 0 ? bytes : 0, 1, MPI_INFO_NULL, node, &base, &window);
    MPI_Aint size; int unit; MPI_Win_shared_query(window, 0, &size, &unit, &base);
    barrier_word *barrier = (barrier_word *)base;
    float *slots = (float *)(base + 4096), *own = slots + (size_t)rank * n, *shared_p = slots + (size_t)ranks * n;
    if (rank == 0) memset(base, 0, bytes);
    MPI_Barrier(MPI_COMM_WORLD);
    float *g = aligned_alloc(64, n * 4), *p = calloc(n, 4), *m = calloc(n, 4), *v = calloc(n, 4), *other = aligned_alloc(64, OTHER_FLOATS * 4);
    for (int i = 0; i < OTHER_FLOATS; i++) other[i] = i;
    volatile float sink = 0;
    static double seconds[BLOCKS][KINDS];
    for (int block = 0; block < BLOCKS; block++) for (int kind = 0; kind < KINDS; kind++) {
        float *grad = kind == 2 ? own : g, *params = kind == 2 ? shared_p : p;
        MPI_Barrier(MPI_COMM_WORLD);
        double start = now();
        for (int step = 0; step < PER_BLOCK; step++) {
            // The forward pass reads every parameter.
            float acc[16] = {0};
            for (int i = 0; i + 16 <= n; i += 16) for (int k = 0; k < 16; k++) acc[k] += params[i + k];
            sink += acc[3];
            if (kind == 2) window_barrier(barrier, ranks);
            for (int i = 0; i < OTHER_FLOATS; i++) other[i] = other[i] * 0.999f + 1.0f;
            for (int i = 0; i < n; i++) grad[i] = (float)((i + step + rank) & 1023) * 1e-3f;
            int lo = rank * chunk, hi = lo + chunk < n ? lo + chunk : n;
            if (kind == 0) { MPI_Barrier(MPI_COMM_WORLD); adam(params, grad, m, v, 0, n); }
            if (kind == 1) { MPI_Allreduce(MPI_IN_PLACE, grad, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); adam(params, grad, m, v, 0, n); }
            if (kind == 2) {
                window_barrier(barrier, ranks);
                for (int i = lo; i < hi; i++) { float s = slots[i]; for (int r = 1; r < ranks; r++) s += slots[(size_t)r * n + i]; own[i] = s; }
                adam(params, own, m, v, lo, hi);
                window_barrier(barrier, ranks);
            }
        }
        seconds[block][kind] = (now() - start) / PER_BLOCK;
    }
    if (rank == 0) {
        printf("%d floats on %d ranks, us per step:\n", n, ranks);
        const char *names[KINDS] = {"step alone", "+ MPI_Allreduce", "+ sharded in window"};
        for (int kind = 0; kind < KINDS; kind++) {
            double d[BLOCKS];
            for (int b = 0; b < BLOCKS; b++) d[b] = (kind ? seconds[b][kind] - seconds[b][0] : seconds[b][0]) * 1e6;
            for (int x = 0; x < BLOCKS; x++) for (int y = x + 1; y < BLOCKS; y++) if (d[y] < d[x]) { double t = d[x]; d[x] = d[y]; d[y] = t; }
            printf("  %-24s median %6.1f (quartiles %6.1f, %6.1f)\n", names[kind], d[BLOCKS / 2], d[BLOCKS / 4], d[3 * BLOCKS / 4]);
        }
    }
    MPI_Win_free(&window); MPI_Finalize(); return 0;
}
