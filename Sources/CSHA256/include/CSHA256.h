#ifndef CSHA256_H
#define CSHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// SHA-256's 64 round constants K0...K63 (FIPS 180-4, 4.2.2), shared with the portable Swift code.
extern const uint32_t csha256_round_constants[64];

/// Nonzero when this CPU has SHA-256 instructions that `csha256_compress_blocks` uses
/// (x86-64: the SHA extensions with SSE4.1 and SSSE3). Checked once; cheap to call again.
int csha256_hardware_available(void);

/// Runs the SHA-256 compression function over `block_count` consecutive 64-byte blocks at `blocks`
/// (any alignment), updating `state` (the eight working words H0...H7 of FIPS 180-4, in that order).
/// Padding is the caller's business. Call only when `csha256_hardware_available()` is nonzero.
void csha256_compress_blocks(uint32_t state[8], const uint8_t *blocks, size_t block_count);

#ifdef __cplusplus
}
#endif

#endif
