#ifndef MLPC_FLOAT_ENVIRONMENT_H
#define MLPC_FLOAT_ENVIRONMENT_H

/// Sets flush-to-zero and denormals-are-zero for the calling thread (x86-64 MXCSR; AArch64 FPCR.FZ).
/// Denormal floats make Adam's late steps several times slower; every thread that runs kernels sets
/// the same mode, so results stay identical across thread counts.
void mlpc_enable_flush_to_zero(void);

/// 1 when the calling thread flushes denormals to zero.
int mlpc_flush_to_zero_enabled(void);

#endif
