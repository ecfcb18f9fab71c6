// The SHA-256 compression function on the CPU's SHA instructions. Only the block compression lives
// here; padding and length bookkeeping stay in Swift (Sources/Runtime/Data/SHA256.swift), which also
// keeps a portable implementation for CPUs without these instructions.
//
// The functions that use the instructions carry a target attribute instead of the package passing
// -msha, so the rest of the binary runs on any x86-64 and this code runs only after the CPUID check.

#include "CSHA256.h"

/// FIPS 180-4 section 4.2.2, for every architecture: the portable Swift code reads them too.
const uint32_t csha256_round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <immintrin.h>

static int detect_hardware(void) {
    unsigned int eax, ebx, ecx, edx;
    // Leaf 1 ECX: bit 9 SSSE3, bit 19 SSE4.1.
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(ecx & (1u << 9)) || !(ecx & (1u << 19))) return 0;
    // Leaf 7 subleaf 0 EBX bit 29: the SHA extensions.
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx & (1u << 29)) != 0;
}

int csha256_hardware_available(void) {
    // -1 until the first call; racing first calls compute and store the same answer.
    static int available = -1;
    int known = __atomic_load_n(&available, __ATOMIC_RELAXED);
    if (known < 0) {
        known = detect_hardware();
        __atomic_store_n(&available, known, __ATOMIC_RELAXED);
    }
    return known;
}

// Four rounds: adds the constants to the four schedule words and runs two SHA256RNDS2 (two rounds
// each; the second takes the upper two words of the sum).
#define FOUR_ROUNDS(words, index)                                                          \
    do {                                                                                   \
        __m128i sum = _mm_add_epi32(                                                       \
            (words), _mm_loadu_si128((const __m128i *)(csha256_round_constants + 4 * (index))));   \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, sum);                                     \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(sum, 0x0E));            \
    } while (0)

// The next four schedule words W[t..t+3] from the previous sixteen held in w0 (oldest) ... w3:
// SHA256MSG1 adds sigma0 of W[t-15..t-12] to W[t-16..t-13], the alignr brings in W[t-7..t-4], and
// SHA256MSG2 adds sigma1 of W[t-2], W[t-1] (and of the words it has just made).
#define NEXT_WORDS(w0, w1, w2, w3) \
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((w0), (w1)), _mm_alignr_epi8((w3), (w2), 4)), (w3))

__attribute__((target("sha,sse4.1,ssse3")))
void csha256_compress_blocks(uint32_t state[8], const uint8_t *blocks, size_t block_count) {
    // Message words are big-endian: reverse the bytes of each 32-bit word.
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);

    // SHA256RNDS2 keeps the state as (A, B, E, F) and (C, D, G, H), highest lane first.
    __m128i dcba = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&state[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);

    for (size_t block = 0; block < block_count; block++) {
        const uint8_t *bytes = blocks + 64 * block;
        __m128i abef_start = abef;
        __m128i cdgh_start = cdgh;

        __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(bytes + 0)), byte_swap);
        __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(bytes + 16)), byte_swap);
        __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(bytes + 32)), byte_swap);
        __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(bytes + 48)), byte_swap);
        FOUR_ROUNDS(w0, 0);
        FOUR_ROUNDS(w1, 1);
        FOUR_ROUNDS(w2, 2);
        FOUR_ROUNDS(w3, 3);
        // Rounds 16...63: each step makes four schedule words from the last sixteen and uses them;
        // the four registers rotate so w0 is always the oldest.
        for (int group = 4; group < 16; group += 4) {
            w0 = NEXT_WORDS(w0, w1, w2, w3);
            FOUR_ROUNDS(w0, group);
            w1 = NEXT_WORDS(w1, w2, w3, w0);
            FOUR_ROUNDS(w1, group + 1);
            w2 = NEXT_WORDS(w2, w3, w0, w1);
            FOUR_ROUNDS(w2, group + 2);
            w3 = NEXT_WORDS(w3, w0, w1, w2);
            FOUR_ROUNDS(w3, group + 3);
        }

        abef = _mm_add_epi32(abef, abef_start);
        cdgh = _mm_add_epi32(cdgh, cdgh_start);
    }

    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(dchg, feba, 8));
}

#else

// No SHA instructions are used on this architecture: callers take the portable Swift path.
int csha256_hardware_available(void) { return 0; }

void csha256_compress_blocks(uint32_t state[8], const uint8_t *blocks, size_t block_count) {
    (void)state;
    (void)blocks;
    (void)block_count;
}

#endif
