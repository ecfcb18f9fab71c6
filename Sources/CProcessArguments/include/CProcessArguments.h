#ifndef MLPC_PROCESS_ARGUMENTS_H
#define MLPC_PROCESS_ARGUMENTS_H

/// The process's argc and argv as the C library passed them to the program's initializers. Swift's
/// CommandLine reads them from /proc/self/cmdline on Linux, which is empty when /proc is not mounted
/// (a container, a chroot); these come from the C library, /proc or not. 0 and NULL if never captured.
int mlpc_process_argc(void);
char *const *mlpc_process_argv(void);

#endif
