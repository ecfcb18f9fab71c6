#ifndef MLPC_MEMORY_HINTS_H
#define MLPC_MEMORY_HINTS_H

#include <stddef.h>
#include <stdint.h>

/// Starts loading rows indices[0..<count] of `rows` (each `row_bytes` long, back to back) into the
/// second-level cache, one prefetch per cache line, without waiting for them. The training loop calls
/// it for the next batch while this one trains, so the next gather finds its random rows in cache.
/// A hint only: it never faults and changes no result.
void mlpc_prefetch_rows(const uint8_t *rows, size_t row_bytes, const int32_t *indices, size_t count);

#endif
