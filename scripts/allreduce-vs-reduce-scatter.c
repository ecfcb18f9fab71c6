// Whether the step's allreduce could be replaced by a reduce-scatter (each rank then running the
// optimizer on its own shard of the parameters) and an allgather of the updated parameters: the
// same bytes on the wire, half the optimizer work on 2 ranks. Each rank, 3000 times each, 4 rounds:
//   MPI_Allreduce (sum, in place) of N floats, as mlpc's step sends it;
//   MPI_Reduce_scatter_block (in place), Open MPI's own;
//   a ring reduce-scatter with MPI_Sendrecv (N - 1 exchanges of N / ranks floats, each summed);
//   MPI_Allgather (in place) of N / ranks floats per rank;
//   the ring reduce-scatter followed by the allgather, as a step would run them.
// Build and run (Open MPI's compiler wrapper, from libopenmpi-dev):
//   mpicc -O2 scripts/allreduce-vs-reduce-scatter.c -o /tmp/allreduce-vs-reduce-scatter
//   mpirun --allow-run-as-root --oversubscribe -np 2 /tmp/allreduce-vs-reduce-scatter [N=110816]
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// After it, rank r holds the sum over the ranks of chunk r of `a`.
static void ring_reduce_scatter(float *a, float *received, int chunk, int rank, int ranks) {
    int right = (rank + 1) % ranks, left = (rank - 1 + ranks) % ranks;
    for (int s = 0; s < ranks - 1; s++) {
        int send = (rank - s - 1 + 2 * ranks) % ranks, into = (rank - s - 2 + 2 * ranks) % ranks;
        MPI_Sendrecv(a + send * chunk, chunk, MPI_FLOAT, right, 0, received, chunk, MPI_FLOAT, left, 0, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        float *sum = a + into * chunk;
        for (int i = 0; i < chunk; i++) sum[i] += received[i];
    }
}

int main(int argc, char **argv) {
    MPI_Init(NULL, NULL);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int n = argc > 1 ? atoi(argv[1]) : 110816, reps = 3000, chunk = n / ranks;
    float *a = calloc(n, 4), *received = calloc(chunk, 4);
    for (int i = 0; i < 300; i++) MPI_Allreduce(MPI_IN_PLACE, a, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (int round = 0; round < 4; round++) {
        double t[5];
        for (int kind = 0; kind < 5; kind++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double start = now();
            for (int i = 0; i < reps; i++) {
                if (kind == 0) MPI_Allreduce(MPI_IN_PLACE, a, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                if (kind == 1) MPI_Reduce_scatter_block(MPI_IN_PLACE, a, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
                if (kind == 2 || kind == 4) ring_reduce_scatter(a, received, chunk, rank, ranks);
                if (kind == 3 || kind == 4)
                    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, a, chunk, MPI_FLOAT, MPI_COMM_WORLD);
            }
            t[kind] = (now() - start) / reps * 1e6;
        }
        if (rank == 0)
            printf("%d floats on %d ranks: allreduce %.1f us; reduce_scatter_block %.1f; ring reduce-scatter %.1f; "
                   "allgather %.1f; ring reduce-scatter + allgather %.1f\n",
                   n, ranks, t[0], t[1], t[2], t[3], t[4]);
    }
    MPI_Finalize();
    return 0;
}
