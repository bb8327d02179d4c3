// System helpers that must be written in C: what a signal handler may do is limited to async-signal-safe calls.
// No stable API (see Modules/CBLAS/README.md for the same rule).
#ifndef BACKPROP_CSYSTEM_H
#define BACKPROP_CSYSTEM_H

/// Remembers `path` as the temporary file being written (at most 4095 bytes; longer paths are not remembered).
void bp_temporary_file_begin(const char *path);
/// Forgets the temporary file (it was renamed or removed).
void bp_temporary_file_end(void);
/// Installs handlers for SIGINT, SIGTERM, SIGHUP and SIGQUIT that remove the remembered temporary file, then let the
/// signal take its default action (the process ends as it would have), and unblocks those signals in the calling
/// thread. Idempotent.
void bp_install_temporary_file_cleanup(void);

/// Writes `count` bytes to standard output through stdio; returns the bytes written.
unsigned long bp_write_standard_output(const void *bytes, unsigned long count);
/// Flushes standard output; returns 0, or the errno of a write that failed (now or earlier).
int bp_flush_standard_output(void);

#endif
