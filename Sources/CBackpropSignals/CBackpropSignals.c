#include <errno.h>
#include <stdio.h>
#include "CBackpropSignals.h"
#include <signal.h>
#include <string.h>
#include <unistd.h>

static char temporary_path[4096];
static volatile sig_atomic_t has_temporary_path = 0;
static volatile sig_atomic_t installed = 0;

void bp_temporary_file_begin(const char *path) {
    has_temporary_path = 0;  // the handler never sees a half-copied path
    size_t length = strlen(path);
    if (length >= sizeof temporary_path) return;
    memcpy(temporary_path, path, length + 1);
    has_temporary_path = 1;
}

void bp_temporary_file_end(void) { has_temporary_path = 0; }

static void remove_temporary_file(int signal_number) {
    if (has_temporary_path) unlink(temporary_path);  // async-signal-safe
    has_temporary_path = 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(signal_number, &action, 0);
    raise(signal_number);  // the default action: the process ends by the same signal
}

void bp_install_temporary_file_cleanup(void) {
    if (installed) return;
    installed = 1;
    int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = remove_temporary_file;
        sigemptyset(&action.sa_mask);
        sigaction(signals[i], &action, 0);
    }
    // A parent may have started us with these signals blocked (Foundation's Process does): unblock them, so that
    // Ctrl-C and SIGTERM reach the handlers. Threads created later inherit this mask.
    sigset_t set;
    sigemptyset(&set);
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaddset(&set, signals[i]);
    sigprocmask(SIG_UNBLOCK, &set, 0);
}

static int bp_standard_output_error = 0;  // the errno of the first failed write

unsigned long bp_write_standard_output(const void *bytes, unsigned long count) {
    unsigned long written = fwrite(bytes, 1, count, stdout);
    if (written < count && !bp_standard_output_error) bp_standard_output_error = errno ? errno : EIO;
    return written;
}

int bp_flush_standard_output(void) {
    errno = 0;
    if (fflush(stdout) != 0 && !bp_standard_output_error) bp_standard_output_error = errno ? errno : EIO;
    if (ferror(stdout) && !bp_standard_output_error) bp_standard_output_error = EIO;
    return bp_standard_output_error;
}
