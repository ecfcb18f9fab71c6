#include "CMemoryHints.h"

void mlpc_prefetch_rows(const uint8_t *rows, size_t row_bytes, const int32_t *indices, size_t count) {
    for (size_t r = 0; r < count; r++) {
        const uint8_t *row = rows + (size_t)indices[r] * row_bytes;
        // Every line the row touches, the last one included when the row does not start on a line.
        const uintptr_t first = (uintptr_t)row & ~(uintptr_t)63;
        const uintptr_t end = (uintptr_t)row + row_bytes;
        for (uintptr_t line = first; line < end; line += 64) {
            // Read, moderate locality: prefetcht1 on x86-64 (to L2), prfm pldl2keep on AArch64.
            __builtin_prefetch((const void *)line, 0, 2);
        }
    }
}
