#ifndef MLPC_CDEFLATELOADER_H
#define MLPC_CDEFLATELOADER_H

// Whole-file gzip decompression on libdeflate, opened with dlopen at first use when the system has
// it. libdeflate inflates MNIST's train images about 3.5 times as fast as zlib, but it is not one of
// mlpc's required libraries and has no streaming interface: zlib stays the decoder that always works
// and the one that reports damaged files. No libdeflate header is needed to build this target.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// mlpc_gzip_inflate_whole's results.
enum {
    /// The first gzip member inflated, its CRC-32 and length checked.
    MLPC_INFLATE_DONE = 0,
    /// No libdeflate could be opened.
    MLPC_INFLATE_UNAVAILABLE = -1,
    /// libdeflate could not make a decompressor (out of memory).
    MLPC_INFLATE_SETUP_FAILED = -2,
    /// The data is damaged, or its first member inflates to more than `output_capacity` bytes.
    MLPC_INFLATE_REFUSED = -3,
};

/// Whether a usable libdeflate is loaded (opened once per process, thread-safe, kept open).
int mlpc_libdeflate_available(void);

/// Inflates the first gzip member of `input` into `output`: on MLPC_INFLATE_DONE, `*input_used` is
/// the member's compressed length and `*output_written` its inflated length. Safe to call from
/// several threads at once.
int mlpc_gzip_inflate_whole(const void *input, size_t input_size, void *output, size_t output_capacity,
                            size_t *input_used, size_t *output_written);

#ifdef __cplusplus
}
#endif

#endif
