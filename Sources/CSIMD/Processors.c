#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include "CSIMD.h"

long bp_affinity_cpu_count(void) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    return sysconf(_SC_NPROCESSORS_ONLN);
}

int bp_has_avx512f(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
#else
    return 0;
#endif
}

int bp_has_avx2_fma(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
#else
    return 0;
#endif
}

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct bp_round_trip_probe {
    _Alignas(64) _Atomic long ball;      // the value passed back and forth, on a cache line of its own
    _Alignas(64) _Atomic long arrivals;  // the first to arrive measures
    double nanoseconds;
};

bp_round_trip_probe *bp_round_trip_probe_create(void) {
    bp_round_trip_probe *probe = aligned_alloc(64, sizeof(bp_round_trip_probe));
    if (probe) bp_round_trip_reset(probe);
    return probe;
}

double bp_round_trip_nanoseconds(const bp_round_trip_probe *probe) { return probe->nanoseconds; }

static long bp_monotonic_nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

enum { bp_probe_stop = -2, bp_probe_groups = 4, bp_probe_rounds = 8 };

void bp_round_trip_reset(bp_round_trip_probe *probe) {
    atomic_store(&probe->arrivals, 0);
    atomic_store(&probe->ball, 0);
    probe->nanoseconds = -1;
}

// One turn of a wait in bp_round_trip: a pause, and from the 4096th turn on a yield, so that a thread sharing this CPU
// can run. Every 64 turns it reads the clock: the first reading starts the `timeout`, and it returns 0 once that has
// passed (so the clock is not read while replies come quickly, and the measured round trip does not include it).
static int bp_probe_wait_turn(long *turns, long *deadline, long timeout) {
    *turns += 1;
    if (*turns >= 4096) sched_yield(); else bp_cpu_relax();
    if ((*turns & 63) != 0) return 1;
    long now = bp_monotonic_nanoseconds();
    if (*deadline == 0) *deadline = now + timeout;
    return now <= *deadline;
}

void bp_round_trip(bp_round_trip_probe *probe, long timeoutNanoseconds) {
    long turns = 0, deadline = 0;
    if (atomic_fetch_add(&probe->arrivals, 1) == 0) {
        // Initiator: wait for the other thread to arrive (ball 1), then send even values and wait for each reply.
        while (atomic_load_explicit(&probe->ball, memory_order_acquire) != 1) {
            if (!bp_probe_wait_turn(&turns, &deadline, timeoutNanoseconds)) {
                long expected = 0;  // the other thread may arrive right now: whoever swaps first decides
                if (atomic_compare_exchange_strong(&probe->ball, &expected, bp_probe_stop)) return;
            }
        }
        long ball = 0, best = -1;
        for (int group = 0; group < bp_probe_groups; group++) {
            long groupStart = bp_monotonic_nanoseconds();
            for (int round = 0; round < bp_probe_rounds; round++) {
                ball += 2;
                atomic_store_explicit(&probe->ball, ball, memory_order_release);
                turns = 0;
                deadline = 0;
                while (atomic_load_explicit(&probe->ball, memory_order_acquire) != ball + 1) {
                    if (!bp_probe_wait_turn(&turns, &deadline, timeoutNanoseconds)) {  // no reply: no measurement
                        atomic_store_explicit(&probe->ball, bp_probe_stop, memory_order_release);
                        return;
                    }
                }
            }
            long elapsed = bp_monotonic_nanoseconds() - groupStart;
            if (best < 0 || elapsed < best) best = elapsed;
        }
        probe->nanoseconds = (double)best / bp_probe_rounds;
        atomic_store_explicit(&probe->ball, bp_probe_stop, memory_order_release);
    } else {
        // Responder: announce itself unless the initiator gave up, then answer every even value with the next one
        // (a compare-and-swap, so that a late answer cannot overwrite the initiator's stop), until the stop or until
        // nothing new comes within the timeout.
        long expected = 0;
        if (!atomic_compare_exchange_strong(&probe->ball, &expected, 1)) return;
        long last = 1;
        while (1) {
            long ball = atomic_load_explicit(&probe->ball, memory_order_acquire);
            if (ball == bp_probe_stop) return;
            if (ball != last && (ball & 1) == 0) {
                if (atomic_compare_exchange_strong(&probe->ball, &ball, ball + 1)) {
                    last = ball + 1;
                    turns = 0;
                    deadline = 0;
                }
                continue;
            }
            if (!bp_probe_wait_turn(&turns, &deadline, timeoutNanoseconds)) return;
        }
    }
}
