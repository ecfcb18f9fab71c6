#include "CDeflateLoader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

// libdeflate's ABI (libdeflate.h): the success code and the three functions used, which keep their
// signatures across releases (libdeflate only adds to its ABI). A library too old to have the
// gzip _ex variant is not used.
enum { LIBDEFLATE_SUCCESS = 0 };

struct libdeflate_decompressor;

static struct {
    struct libdeflate_decompressor *(*alloc_decompressor)(void);
    int (*gzip_decompress_ex)(struct libdeflate_decompressor *decompressor, const void *in, size_t in_nbytes,
                              void *out, size_t out_nbytes_avail, size_t *actual_in_nbytes_ret,
                              size_t *actual_out_nbytes_ret);
    void (*free_decompressor)(struct libdeflate_decompressor *decompressor);
    int loaded;
} libdeflate;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

#if defined(__APPLE__)
static const char *const library_names[] = {"libdeflate.0.dylib", "/opt/homebrew/lib/libdeflate.0.dylib",
                                            "/usr/local/lib/libdeflate.0.dylib"};
#else
// The runtime package (libdeflate0 on Debian and Ubuntu) ships only the versioned name.
static const char *const library_names[] = {"libdeflate.so.0"};
#endif

static void load_libdeflate(void) {
    for (size_t index = 0; index < sizeof library_names / sizeof library_names[0]; index++) {
        void *library = dlopen(library_names[index], RTLD_NOW | RTLD_LOCAL);
        if (library == NULL) continue;
        void *alloc = dlsym(library, "libdeflate_alloc_decompressor");
        void *decompress = dlsym(library, "libdeflate_gzip_decompress_ex");
        void *release = dlsym(library, "libdeflate_free_decompressor");
        if (alloc == NULL || decompress == NULL || release == NULL) {
            dlclose(library);
            continue;
        }
        // dlsym returns object pointers; this is the conversion to function pointers that POSIX's
        // dlsym page shows.
        *(void **)&libdeflate.alloc_decompressor = alloc;
        *(void **)&libdeflate.gzip_decompress_ex = decompress;
        *(void **)&libdeflate.free_decompressor = release;
        libdeflate.loaded = 1;
        return;
    }
}

int mlpc_libdeflate_available(void) {
    pthread_once(&load_once, load_libdeflate);
    return libdeflate.loaded;
}

int mlpc_gzip_inflate_whole(const void *input, size_t input_size, void *output, size_t output_capacity,
                            size_t *input_used, size_t *output_written) {
    if (!mlpc_libdeflate_available()) return MLPC_INFLATE_UNAVAILABLE;
    // A decompressor per call: they are small, and one must not be shared between threads.
    struct libdeflate_decompressor *decompressor = libdeflate.alloc_decompressor();
    if (decompressor == NULL) return MLPC_INFLATE_SETUP_FAILED;
    size_t used = 0, written = 0;
    int result = libdeflate.gzip_decompress_ex(decompressor, input, input_size, output, output_capacity, &used, &written);
    libdeflate.free_decompressor(decompressor);
    if (result != LIBDEFLATE_SUCCESS) return MLPC_INFLATE_REFUSED;
    *input_used = used;
    *output_written = written;
    return MLPC_INFLATE_DONE;
}
