#include "CCurlLoader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// libcurl's ABI values, declared here because its -dev header is not installed everywhere. They have
// not changed since they were introduced (curl/curl.h: "the return codes must remain the same").
enum {
    CURLE_OK = 0,
    CURLOPT_WRITEDATA = 10001,
    CURLOPT_URL = 10002,
    CURLOPT_ERRORBUFFER = 10010,
    CURLOPT_USERAGENT = 10018,
    CURLOPT_WRITEFUNCTION = 20011,
    CURLOPT_LOW_SPEED_LIMIT = 19,
    CURLOPT_LOW_SPEED_TIME = 20,
    CURLOPT_TIMEOUT = 13,
    CURLOPT_FOLLOWLOCATION = 52,
    CURLOPT_MAXREDIRS = 68,
    CURLOPT_CONNECTTIMEOUT = 78,
    CURLOPT_NOSIGNAL = 99,
    CURLOPT_PROTOCOLS = 181,
    CURLOPT_REDIR_PROTOCOLS = 182,
    CURLINFO_RESPONSE_CODE = 0x200002,
    CURLINFO_OS_ERRNO = 0x200019,
    CURL_ERROR_SIZE = 256,
};
#define CURL_GLOBAL_DEFAULT 3L
#define CURLPROTO_HTTP (1L << 0)
#define CURLPROTO_HTTPS (1L << 1)

struct mlpc_curl {
    void *library;
    int (*global_init)(long flags);
    void (*global_cleanup)(void);
    void *(*easy_init)(void);
    int (*easy_setopt)(void *handle, int option, ...);
    int (*easy_perform)(void *handle);
    int (*easy_getinfo)(void *handle, int info, ...);
    void (*easy_cleanup)(void *handle);
    const char *(*easy_strerror)(int code);
};

static void write_message(char *error, size_t capacity, const char *format, ...) {
    if (error == NULL || capacity == 0) return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error, capacity, format, arguments);
    va_end(arguments);
}

#if defined(__APPLE__)
static const char *const platform_names[] = {"libcurl.4.dylib", "/usr/lib/libcurl.4.dylib", "libcurl.dylib"};
#else
// Debian/Ubuntu ship the OpenSSL build as libcurl.so.4 and the GnuTLS build as libcurl-gnutls.so.4;
// the unversioned name exists only with the -dev package.
static const char *const platform_names[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so"};
#endif

const char *mlpc_curl_primary_library_name(void) { return platform_names[0]; }

// curl_global_init and curl_global_cleanup are not thread-safe in every libcurl version.
static pthread_mutex_t global_init_lock = PTHREAD_MUTEX_INITIALIZER;

mlpc_curl *mlpc_curl_open(const char *const *names, size_t count, char *error, size_t error_capacity) {
    write_message(error, error_capacity, "no library name given");
    for (size_t index = 0; index < count; index++) {
        void *library = dlopen(names[index], RTLD_NOW | RTLD_LOCAL);
        if (library == NULL) {
            const char *reason = dlerror();
            write_message(error, error_capacity, "%s", reason != NULL ? reason : names[index]);
            continue;
        }
        mlpc_curl *curl = calloc(1, sizeof *curl);
        if (curl == NULL) {
            dlclose(library);
            write_message(error, error_capacity, "out of memory");
            return NULL;
        }
        curl->library = library;
        // Function pointers come back from dlsym as void *; POSIX guarantees the conversion.
        *(void **)&curl->global_init = dlsym(library, "curl_global_init");
        *(void **)&curl->global_cleanup = dlsym(library, "curl_global_cleanup");
        *(void **)&curl->easy_init = dlsym(library, "curl_easy_init");
        *(void **)&curl->easy_setopt = dlsym(library, "curl_easy_setopt");
        *(void **)&curl->easy_perform = dlsym(library, "curl_easy_perform");
        *(void **)&curl->easy_getinfo = dlsym(library, "curl_easy_getinfo");
        *(void **)&curl->easy_cleanup = dlsym(library, "curl_easy_cleanup");
        *(void **)&curl->easy_strerror = dlsym(library, "curl_easy_strerror");
        if (curl->global_init == NULL || curl->global_cleanup == NULL || curl->easy_init == NULL
            || curl->easy_setopt == NULL || curl->easy_perform == NULL || curl->easy_getinfo == NULL
            || curl->easy_cleanup == NULL || curl->easy_strerror == NULL) {
            write_message(error, error_capacity, "%s lacks libcurl's easy interface", names[index]);
            dlclose(library);
            free(curl);
            continue;
        }
        pthread_mutex_lock(&global_init_lock);
        int initialized = curl->global_init(CURL_GLOBAL_DEFAULT);
        pthread_mutex_unlock(&global_init_lock);
        if (initialized != CURLE_OK) {
            write_message(error, error_capacity, "curl_global_init failed in %s: %s", names[index],
                          curl->easy_strerror(initialized));
            dlclose(library);
            free(curl);
            continue;
        }
        return curl;
    }
    return NULL;
}

void mlpc_curl_close(mlpc_curl *curl) {
    if (curl == NULL) return;
    pthread_mutex_lock(&global_init_lock);
    curl->global_cleanup();
    pthread_mutex_unlock(&global_init_lock);
    dlclose(curl->library);
    free(curl);
}

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static mlpc_curl *default_curl;
static char default_error[512];

static void open_default(void) {
    default_curl = mlpc_curl_open(platform_names, sizeof platform_names / sizeof platform_names[0], default_error,
                                  sizeof default_error);
}

mlpc_curl *mlpc_curl_default(char *error, size_t error_capacity) {
    pthread_once(&default_once, open_default);
    if (default_curl == NULL) write_message(error, error_capacity, "%s", default_error);
    return default_curl;
}

/// What the write callback needs: the caller's sink, and the handle to ask for the status.
struct transfer {
    mlpc_curl *curl;
    void *handle;
    mlpc_body_sink on_body;
    void *context;
    /// Set when the first body bytes came with a status other than 200: the body is not wanted.
    int status_rejected;
};

static size_t receive_body(char *bytes, size_t size, size_t count, void *userdata) {
    struct transfer *transfer = userdata;
    size_t length = size * count;
    long status = 0;
    if (transfer->curl->easy_getinfo(transfer->handle, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status != 200) {
        transfer->status_rejected = 1;
        return length == 0 ? 1 : 0;  // anything but `length` stops the transfer
    }
    return transfer->on_body(bytes, length, transfer->context);
}

int mlpc_http_get(
    mlpc_curl *curl, const char *url, long connect_timeout_s, long idle_timeout_s, long total_timeout_s,
    mlpc_body_sink on_body, void *context, long *http_status, long *os_error, char *error, size_t error_capacity) {
    if (http_status != NULL) *http_status = 0;
    if (os_error != NULL) *os_error = 0;
    write_message(error, error_capacity, "%s", "");
    if (curl == NULL) {
        write_message(error, error_capacity, "libcurl is not loaded");
        return MLPC_HTTP_LIBCURL_MISSING;
    }
    void *handle = curl->easy_init();
    if (handle == NULL) {
        write_message(error, error_capacity, "curl_easy_init failed");
        return MLPC_HTTP_SETUP_FAILED;
    }
    char curl_error[CURL_ERROR_SIZE];
    curl_error[0] = '\0';
    struct transfer transfer = {curl, handle, on_body, context, 0};
    size_t (*callback)(char *, size_t, size_t, void *) = receive_body;

    int refused = CURLE_OK;
    const char *refused_option = NULL;
#define SET(option, value)                                                                        \
    do {                                                                                          \
        if (refused == CURLE_OK && (refused = curl->easy_setopt(handle, option, value)) != CURLE_OK) \
            refused_option = #option;                                                             \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, curl_error);
    SET(CURLOPT_URL, url);
    SET(CURLOPT_USERAGENT, "mlpc");
    SET(CURLOPT_NOSIGNAL, 1L);  // timeouts must not use SIGALRM in a multithreaded process
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, 10L);
    SET(CURLOPT_CONNECTTIMEOUT, connect_timeout_s);
    // Idle timeout: fewer than 1 byte/s for idle_timeout_s seconds aborts.
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME, idle_timeout_s);
    SET(CURLOPT_TIMEOUT, total_timeout_s);
    SET(CURLOPT_WRITEFUNCTION, callback);
    SET(CURLOPT_WRITEDATA, (void *)&transfer);
#undef SET
    if (refused != CURLE_OK) {
        write_message(error, error_capacity, "libcurl refused %s: %s", refused_option, curl->easy_strerror(refused));
        curl->easy_cleanup(handle);
        return MLPC_HTTP_SETUP_FAILED;
    }
    // Deprecated since 7.85 in favour of the *_STR forms, still honoured; a redirect to file:// or
    // another scheme must not be followed. Best effort: a libcurl without them still limits nothing else.
    curl->easy_setopt(handle, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
    curl->easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);

    int result = curl->easy_perform(handle);
    long status = 0;
    if (curl->easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) status = 0;
    if (http_status != NULL) *http_status = status;
    long system_error = 0;
    if (os_error != NULL && curl->easy_getinfo(handle, CURLINFO_OS_ERRNO, &system_error) == CURLE_OK) *os_error = system_error;
    if (result == MLPC_CURLE_WRITE_ERROR && transfer.status_rejected) result = MLPC_HTTP_ANSWERED;
    if (result != CURLE_OK) {
        write_message(error, error_capacity, "%s", curl_error[0] != '\0' ? curl_error : curl->easy_strerror(result));
    }
    curl->easy_cleanup(handle);
    return result;
}
