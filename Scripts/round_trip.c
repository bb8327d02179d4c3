// How long a cache line takes to go from one thread to another and back, on two threads the system places where it
// likes (as it places a program's threads): the median of 25 groups of 8 round trips, in nanoseconds.
// On this host 55–85 ns when the two virtual CPUs sit on one core complex, 28–48 on one core, 240–360 on two core
// complexes (then 2-thread programs that share data between threads slow down; see Parallel.swift's measureRoundTrip).
//
//     cc -O2 Scripts/round_trip.c -o /tmp/round-trip -lpthread && /tmp/round-trip
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { groups = 25, rounds = 8, stop = -2 };
static _Alignas(64) _Atomic long ball;

static long nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *responder(void *unused) {
    (void)unused;
    long last = 1;
    atomic_store(&ball, 1);
    for (;;) {
        long value = atomic_load_explicit(&ball, memory_order_acquire);
        if (value == stop) return NULL;
        if (value != last && (value & 1) == 0) atomic_store_explicit(&ball, last = value + 1, memory_order_release);
    }
}

static int ascending(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, responder, NULL) != 0) { perror("pthread_create"); return 1; }
    while (atomic_load(&ball) != 1) {}
    long value = 0, times[groups];
    for (int group = 0; group < groups; group++) {
        long start = nanoseconds();
        for (int round = 0; round < rounds; round++) {
            value += 2;
            atomic_store_explicit(&ball, value, memory_order_release);
            while (atomic_load_explicit(&ball, memory_order_acquire) != value + 1) {}
        }
        times[group] = nanoseconds() - start;
    }
    atomic_store(&ball, stop);
    pthread_join(thread, NULL);
    qsort(times, groups, sizeof times[0], ascending);
    printf("round_trip_ns=%.0f\n", (double)times[groups / 2] / rounds);
    return 0;
}
