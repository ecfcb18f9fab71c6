#ifndef MLPC_CCURLLOADER_H
#define MLPC_CCURLLOADER_H

// HTTP GET on libcurl opened with dlopen at the first download, so that mlpc's executable links no
// networking library: every process start (mlpc check, mlpc plan) then skips loading and relocating
// libcurl and its TLS/Kerberos/LDAP dependencies. No libcurl header is needed to build this target.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An opened libcurl with the functions mlpc calls; opaque.
typedef struct mlpc_curl mlpc_curl;

/// Receives the response body in pieces; returns `count` to go on, anything else to stop the transfer.
typedef size_t (*mlpc_body_sink)(const char *bytes, size_t count, void *context);

/// mlpc_http_get's results besides libcurl's own CURLcode values (which are positive).
enum {
    /// The server answered; `*http_status` says how. The body went to the sink only for status 200.
    MLPC_HTTP_ANSWERED = 0,
    /// No libcurl could be opened (`error` says why).
    MLPC_HTTP_LIBCURL_MISSING = -1,
    /// libcurl could not make a transfer handle or refused an option (`error` says which).
    MLPC_HTTP_SETUP_FAILED = -2,
};

/// libcurl's result codes that mlpc tells apart (stable ABI values from curl/curl.h).
enum {
    MLPC_CURLE_UNSUPPORTED_PROTOCOL = 1,
    MLPC_CURLE_URL_MALFORMAT = 3,
    MLPC_CURLE_COULDNT_RESOLVE_PROXY = 5,
    MLPC_CURLE_COULDNT_RESOLVE_HOST = 6,
    MLPC_CURLE_COULDNT_CONNECT = 7,
    MLPC_CURLE_WRITE_ERROR = 23,
    MLPC_CURLE_OPERATION_TIMEDOUT = 28,
    MLPC_CURLE_SSL_CONNECT_ERROR = 35,
    MLPC_CURLE_TOO_MANY_REDIRECTS = 47,
    MLPC_CURLE_GOT_NOTHING = 52,
    MLPC_CURLE_SEND_ERROR = 55,
    MLPC_CURLE_RECV_ERROR = 56,
    MLPC_CURLE_SSL_CERTPROBLEM = 58,
    MLPC_CURLE_SSL_CIPHER = 59,
    MLPC_CURLE_PEER_FAILED_VERIFICATION = 60,
    MLPC_CURLE_SSL_CACERT_BADFILE = 77,
    MLPC_CURLE_SSL_SHUTDOWN_FAILED = 80,
    MLPC_CURLE_SSL_CRL_BADFILE = 82,
    MLPC_CURLE_SSL_ISSUER_ERROR = 83,
    MLPC_CURLE_SSL_PINNEDPUBKEYNOTMATCH = 90,
    MLPC_CURLE_SSL_INVALIDCERTSTATUS = 91,
};

/// The file name tried first for this platform ("libcurl.so.4" on Linux), for messages.
const char *mlpc_curl_primary_library_name(void);

/// The platform's libcurl, opened and initialized once per process (thread-safe) and kept open;
/// NULL with the reason in `error` when none of the platform's names can be opened.
mlpc_curl *mlpc_curl_default(char *error, size_t error_capacity);

/// Opens the first of `names` that dlopen accepts and resolves the functions used; NULL with the
/// reason in `error` when none can. Release it with mlpc_curl_close.
mlpc_curl *mlpc_curl_open(const char *const *names, size_t count, char *error, size_t error_capacity);

/// Releases a library from mlpc_curl_open (not the one from mlpc_curl_default).
void mlpc_curl_close(mlpc_curl *curl);

/// GETs `url` (redirects followed, http and https only). `connect_timeout_s` bounds connecting,
/// `idle_timeout_s` each stretch of receiving nothing, `total_timeout_s` the whole transfer (0: no
/// bound). Returns MLPC_HTTP_ANSWERED with `*http_status` set, a negative MLPC_HTTP_* code, or
/// libcurl's CURLcode (MLPC_CURLE_WRITE_ERROR when the sink stopped it), with a message in `error`
/// and, for a failed connect, the system's errno in `*os_error` (ECONNREFUSED, ENETUNREACH, ...).
int mlpc_http_get(
    mlpc_curl *curl, const char *url, long connect_timeout_s, long idle_timeout_s, long total_timeout_s,
    mlpc_body_sink on_body, void *context, long *http_status, long *os_error, char *error, size_t error_capacity);

#ifdef __cplusplus
}
#endif

#endif
