// Whether ranks on one machine could exchange the step's gradients through an MPI-3 shared-memory
// window (MPI_Win_allocate_shared) faster than with MPI_Allreduce. Each rank's gradient block has
// its own slot in the window; after a barrier (a counter in the window that the ranks spin on) each
// rank sums its 1/N of every slot, in rank order. Every kind of exchange runs around the same
// stand-in step, interleaved in blocks of 40 steps so that every kind sees the same phases of a
// shared machine. Printed: the stand-in step alone, then each kind's extra time per step (medians
// and quartiles of 80 blocks).
//
// `exchange` (the default) keeps the optimizer on every rank. Stand-in step: 1.2 MB of other memory
// touched, the gradient block written, then read by an Adam-like update. Kinds:
//   MPI_Allreduce (sum, in place), as mlpc's step runs it;
//   window, drop-in: the gradients copied into the slot, each rank's 1/N summed into its own slot,
//     every 1/N copied back (what a RankGroup.sum over a window would do);
//   window, in place: the gradients written into the slot directly (the arena's gradient block would
//     live in the window) and the update reading each 1/N of the sums where its owner left it;
//   in place, gather: the same, but the other ranks' sums copied into the rank's own slot first, so
//     that the update reads one contiguous block as mlpc's optimizer kernels do;
//   in place, scatter: each rank writes its 1/N of the sums into every slot.
//
// `sharded` splits the optimizer between the ranks. Stand-in step: a forward pass reading every
// parameter, the other memory, the gradient block written, then Adam (moments m and v). Kinds:
//   MPI_Allreduce, then Adam over all parameters on every rank (what mlpc does);
//   sharded in the window: parameters and gradients in the window; each rank sums its 1/N of the
//     gradients and runs Adam on that 1/N only, writing the parameters where every rank's next
//     forward pass reads them.
//
// Build and run (Open MPI's compiler wrapper, from libopenmpi-dev):
//   mpicc -O3 -march=native -fno-math-errno scripts/shared-window-exchange.c -o /tmp/shared-window-exchange -lm
//   mpirun --allow-run-as-root --oversubscribe -np 2 /tmp/shared-window-exchange [exchange|sharded] [N=110816]
#include <math.h>
#include <mpi.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_KINDS = 6, BLOCKS = 80, PER_BLOCK = 40, OTHER_FLOATS = 300000 };

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

// What every kind shares: the rank, the block size, the window (a barrier word, then `slots` floats
// per rank, then `extra` floats) and some memory of the rank's own that the stand-in step touches.
typedef struct {
    int rank, ranks, n, chunk;
    barrier_word *barrier;
    float *slots, *own, *extra, *other;
} setup;

static setup make_setup(int n, size_t extra_floats, MPI_Win *window) {
    setup s = {.n = n};
    MPI_Comm_rank(MPI_COMM_WORLD, &s.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &s.ranks);
    s.chunk = (n + s.ranks - 1) / s.ranks;
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int node_size;
    MPI_Comm_size(node, &node_size);
    if (node_size != s.ranks) {
        if (s.rank == 0) fprintf(stderr, "the ranks are not all on one machine\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    size_t bytes = 4096 + ((size_t)n * s.ranks + extra_floats) * sizeof(float);
    char *base;
    MPI_Win_allocate_shared(s.rank == 0 ? bytes : 0, 1, MPI_INFO_NULL, node, &base, window);
    MPI_Aint size;
    int unit;
    MPI_Win_shared_query(*window, 0, &size, &unit, &base);
    s.barrier = (barrier_word *)base;
    s.slots = (float *)(base + 4096);
    s.own = s.slots + (size_t)s.rank * n;
    s.extra = s.slots + (size_t)s.ranks * n;
    if (s.rank == 0) memset(base, 0, bytes);
    MPI_Barrier(MPI_COMM_WORLD);
    s.other = aligned_alloc(64, OTHER_FLOATS * sizeof(float));
    for (int i = 0; i < OTHER_FLOATS; i++) s.other[i] = i;
    return s;
}

static void touch_other_memory(const setup *s) {
    for (int i = 0; i < OTHER_FLOATS; i++) s->other[i] = s->other[i] * 0.999f + 1.0f;
}

static void chunk_range(const setup *s, int r, int *lo, int *hi) {
    *lo = r * s->chunk;
    *hi = *lo + s->chunk < s->n ? *lo + s->chunk : s->n;
}

// This rank's 1/N of the sum over the slots, in rank order.
static void sum_own_chunk(const setup *s, int scatter) {
    int lo, hi;
    chunk_range(s, s->rank, &lo, &hi);
    for (int i = lo; i < hi; i++) {
        float sum = s->slots[i];
        for (int r = 1; r < s->ranks; r++) sum += s->slots[(size_t)r * s->n + i];
        if (scatter)
            for (int r = 0; r < s->ranks; r++) s->slots[(size_t)r * s->n + i] = sum;
        else
            s->own[i] = sum;
    }
}

static void adam(float *p, const float *g, float *m, float *v, int lo, int hi) {
    for (int i = lo; i < hi; i++) {
        m[i] = 0.9f * m[i] + 0.1f * g[i];
        v[i] = 0.999f * v[i] + 0.001f * g[i] * g[i];
        p[i] -= 0.001f * m[i] / (sqrtf(v[i]) + 1e-8f);
    }
}

static void exchange_step(const setup *s, int kind, int step, float *gradient, float *parameters) {
    int n = s->n;
    float *g = kind >= 3 ? s->own : gradient;
    // Every rank is done reading the slots (the last step's sums) before any writes its own.
    if (kind >= 2) window_barrier(s->barrier, s->ranks);
    touch_other_memory(s);
    for (int i = 0; i < n; i++) g[i] = (float)(i + step + s->rank);
    if (kind == 0) MPI_Barrier(MPI_COMM_WORLD);
    if (kind == 1) MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (kind >= 2) {
        if (kind == 2) memcpy(s->own, g, (size_t)n * sizeof(float));
        window_barrier(s->barrier, s->ranks);
        sum_own_chunk(s, kind == 5);
        window_barrier(s->barrier, s->ranks);
    }
    for (int r = 0; r < s->ranks; r++) {
        int lo, hi;
        chunk_range(s, r, &lo, &hi);
        const float *sums = s->slots + (size_t)r * n;
        if (kind == 2) memcpy(g + lo, sums + lo, (size_t)(hi - lo) * sizeof(float));
        if (kind == 4 && r != s->rank) memcpy(s->own + lo, sums + lo, (size_t)(hi - lo) * sizeof(float));
        if (kind == 3)
            for (int i = lo; i < hi; i++) parameters[i] = parameters[i] * 0.9f + 0.001f * sums[i];
    }
    if (kind != 3)
        for (int i = 0; i < n; i++) parameters[i] = parameters[i] * 0.9f + 0.001f * g[i];
}

static volatile float forward_sink;

static void sharded_step(const setup *s, int kind, int step, float *gradient, float *parameters, float *m, float *v) {
    int n = s->n;
    float *g = kind == 2 ? s->own : gradient, *p = kind == 2 ? s->extra : parameters;
    float accumulators[16] = {0};
    for (int i = 0; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) accumulators[k] += p[i + k];
    forward_sink += accumulators[3];
    if (kind == 2) window_barrier(s->barrier, s->ranks);
    touch_other_memory(s);
    for (int i = 0; i < n; i++) g[i] = (float)((i + step + s->rank) & 1023) * 1e-3f;
    if (kind == 0) {
        MPI_Barrier(MPI_COMM_WORLD);
        adam(p, g, m, v, 0, n);
    }
    if (kind == 1) {
        MPI_Allreduce(MPI_IN_PLACE, g, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        adam(p, g, m, v, 0, n);
    }
    if (kind == 2) {
        int lo, hi;
        chunk_range(s, s->rank, &lo, &hi);
        window_barrier(s->barrier, s->ranks);
        sum_own_chunk(s, 0);
        adam(p, s->own, m, v, lo, hi);
        window_barrier(s->barrier, s->ranks);
    }
}

int main(int argc, char **argv) {
    MPI_Init(NULL, NULL);
    int sharded = argc > 1 && strcmp(argv[1], "sharded") == 0;
    int n = argc > 2 ? atoi(argv[2]) : 110816;
    MPI_Win window;
    setup s = make_setup(n, sharded ? (size_t)n : 0, &window);
    int kinds = sharded ? 3 : 6;
    float *gradient = aligned_alloc(64, (size_t)n * sizeof(float)), *parameters = calloc(n, sizeof(float));
    float *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
    static double seconds[BLOCKS][MAX_KINDS];
    for (int block = 0; block < BLOCKS; block++) {
        for (int kind = 0; kind < kinds; kind++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = now();
            for (int step = 0; step < PER_BLOCK; step++) {
                if (sharded)
                    sharded_step(&s, kind, step, gradient, parameters, m, v);
                else
                    exchange_step(&s, kind, step, gradient, parameters);
            }
            seconds[block][kind] = (now() - start) / PER_BLOCK;
        }
    }
    if (s.rank == 0) {
        const char *exchange_names[] = {"stand-in step alone", "+ MPI_Allreduce",     "+ window, drop-in",
                                        "+ window, in place",  "+ in place, gather", "+ in place, scatter"};
        const char *sharded_names[] = {"stand-in step alone", "+ MPI_Allreduce, Adam", "+ sharded in window"};
        const char **names = sharded ? sharded_names : exchange_names;
        printf("%s: %d floats on %d ranks, us per step:\n", sharded ? "sharded" : "exchange", n, s.ranks);
        for (int kind = 0; kind < kinds; kind++) {
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
