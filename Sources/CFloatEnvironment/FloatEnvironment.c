#include "CFloatEnvironment.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define MXCSR_DAZ 0x0040
#define MXCSR_FTZ 0x8000

void mlpc_enable_flush_to_zero(void) { _mm_setcsr(_mm_getcsr() | MXCSR_DAZ | MXCSR_FTZ); }

int mlpc_flush_to_zero_enabled(void) { return (_mm_getcsr() & (MXCSR_DAZ | MXCSR_FTZ)) == (MXCSR_DAZ | MXCSR_FTZ); }

#elif defined(__aarch64__)
#include <stdint.h>

void mlpc_enable_flush_to_zero(void) {
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr |= (1ull << 24);
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}

int mlpc_flush_to_zero_enabled(void) {
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (fpcr >> 24) & 1;
}

#else
void mlpc_enable_flush_to_zero(void) {}
int mlpc_flush_to_zero_enabled(void) { return 0; }
#endif
