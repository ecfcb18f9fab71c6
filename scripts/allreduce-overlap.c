// Whether a nonblocking allreduce makes progress while a rank computes, which overlapping the gradient
// allreduce with the backward pass (buckets) would need. Each rank, 2000 times each:
//   a blocking allreduce of N floats alone;
//   C microseconds of computing, then a blocking allreduce;
//   MPI_Iallreduce, C microseconds of computing, MPI_Wait.
// Build and run (through mlpc's own shim, which opens libmpi with dlopen):
//   gcc -O2 -ISources/CMPILoader/include scripts/allreduce-overlap.c Sources/CMPILoader/MPILoader.c -ldl -lpthread -o /tmp/allreduce-overlap
//   mpirun --allow-run-as-root --oversubscribe -np 2 /tmp/allreduce-overlap [N=110816] [C=60]
#include "CMPILoader.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){ struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9; }
static volatile double sink;
static void compute(double us){ double end=now()+us*1e-6; double x=1; while(now()<end){ for(int i=0;i<200;i++) x=x*1.0000001+1e-9; } sink=x; }
int main(int argc,char**argv){ char e[512]; if(mlpc_mpi_init(e,sizeof e)){printf("%s\n",e);return 1;}
 size_t n = argc>1? atol(argv[1]) : 110816; double c = argc>2? atof(argv[2]) : 60;
 float *a = calloc(n,4); int reps=2000;
 for(int i=0;i<200;i++) mlpc_mpi_allreduce_sum(a,n,MLPC_MPI_FLOAT);
 mlpc_mpi_barrier(); double t0=now();
 for(int i=0;i<reps;i++){ compute(c); mlpc_mpi_allreduce_sum(a,n,MLPC_MPI_FLOAT);} double tA=(now()-t0)/reps;
 mlpc_mpi_barrier(); t0=now();
 for(int i=0;i<reps;i++){ mlpc_mpi_allreduce_sum(a,n,MLPC_MPI_FLOAT);} double tR=(now()-t0)/reps;
 mlpc_mpi_barrier(); t0=now();
 for(int i=0;i<reps;i++){ void*r=0; mlpc_mpi_iallreduce_sum(a,n,MLPC_MPI_FLOAT,&r); compute(c); mlpc_mpi_wait(&r);} double tB=(now()-t0)/reps;
 if(mlpc_mpi_rank()==0) printf("floats %zu compute %.0f us: allreduce alone %.1f us; compute then allreduce %.1f us; iallreduce over compute %.1f us\n", n, c, tR*1e6, tA*1e6, tB*1e6);
 mlpc_mpi_finalize(); return 0; }
