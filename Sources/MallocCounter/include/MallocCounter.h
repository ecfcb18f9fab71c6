#ifndef MLPC_MALLOC_COUNTER_H
#define MLPC_MALLOC_COUNTER_H

// Counts heap allocations made by any thread of the process while counting is on, by interposing
// malloc and its relatives. Linked only into the test binary: it proves the training step allocates
// nothing and that the arena is the only allocation that grows with the model or the batch.

/// 1 when the interposer is active (not under a sanitizer that owns malloc itself).
int malloc_counter_available(void);
void malloc_counter_start(void);
/// Stops counting and returns the number of allocations since start.
long malloc_counter_stop(void);
/// Bytes requested by the allocations counted since the last start.
long malloc_counter_bytes(void);

#endif
