#include "CProcessArguments.h"

#include <stddef.h>

static int captured_argc = 0;
static char *const *captured_argv = NULL;

// glibc (and the Darwin loader) call every initializer with the program's argc, argv and envp.
__attribute__((constructor)) static void mlpc_capture_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc > 0 && argv != NULL) {
        captured_argc = argc;
        captured_argv = argv;
    }
}

int mlpc_process_argc(void) { return captured_argc; }
char *const *mlpc_process_argv(void) { return captured_argv; }
