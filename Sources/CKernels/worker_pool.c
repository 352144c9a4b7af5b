#include "worker_pool.h"
#include "cpu_features.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#if LORA_X86
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum { MAX_WORKERS = 63 };
// How long a worker keeps polling for the next loop before it sleeps: longer than the gaps
// inside a decode step and between steps, short enough not to matter to an idle process.
static const int64_t SPIN_NANOSECONDS = 200 * 1000;
// `next` while no loop is open: workers arriving late take no index.
#define CLOSED (INT64_MAX / 2)

static struct {
    atomic_int owner;        // 1 while a caller runs a loop
    atomic_int threads;      // wanted threads, caller included
    int started;             // workers created (under start_lock)
    pthread_mutex_t start_lock;

    // The loop being run; written only while `next` is CLOSED and no worker is reading it.
    void (*task)(void *, int);
    void *context;
    int count;
    _Atomic int64_t next;    // next index to take
    atomic_int done;         // indices finished
    atomic_int readers;      // workers between announcing themselves and leaving a loop

    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    atomic_uint generation;  // bumped once per loop (under sleep_lock)
    int sleepers;            // under sleep_lock
} pool = {
    .threads = 0,
    .start_lock = PTHREAD_MUTEX_INITIALIZER,
    .next = CLOSED,
    .sleep_lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

static int64_t now_nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// Takes indices until none is left. Only called while `next` was seen open after announcing in
// `readers` (workers) or by the owner, so the loop's fields are stable.
static void take_indices(void) {
    const int count = pool.count;
    int64_t i;
    while ((i = atomic_fetch_add(&pool.next, 1)) < count) {
        pool.task(pool.context, (int)i);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
}

static void *worker_main(void *argument) {
    const int index = (int)(intptr_t)argument;
    unsigned seen = atomic_load(&pool.generation);
    for (;;) {
        const int64_t deadline = now_nanoseconds() + SPIN_NANOSECONDS;
        int polls = 0;
        while (atomic_load_explicit(&pool.generation, memory_order_acquire) == seen) {
            CPU_RELAX();
            if (++polls % 256 == 0 && now_nanoseconds() > deadline) {
                pthread_mutex_lock(&pool.sleep_lock);
                pool.sleepers++;
                while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.sleep_lock);
                pool.sleepers--;
                pthread_mutex_unlock(&pool.sleep_lock);
            }
        }
        seen = atomic_load(&pool.generation);
        if (index + 1 >= atomic_load(&pool.threads)) continue;
        // Announce, then look: the owner closes `next` before waiting for readers to leave, so
        // either it waits for this worker or this worker sees the loop closed.
        atomic_fetch_add(&pool.readers, 1);
        if (atomic_load(&pool.next) < CLOSED) take_indices();
        atomic_fetch_sub(&pool.readers, 1);
    }
    return NULL;
}

static int start_workers(int threads) {
    pthread_mutex_lock(&pool.start_lock);
    while (pool.started < threads - 1 && pool.started < MAX_WORKERS) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        const int failed = pthread_create(&thread, &attributes, worker_main, (void *)(intptr_t)pool.started);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        pool.started++;
    }
    const int started = pool.started;
    pthread_mutex_unlock(&pool.start_lock);
    return started;
}

void worker_pool_set_threads(int threads) {
    atomic_store(&pool.threads, threads < 1 ? 1 : threads);
}

int worker_pool_run(int count, void *context, void (*task)(void *context, int index)) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&pool.owner, &expected, 1)) return 0;
    int threads = atomic_load(&pool.threads);
    if (threads == 0) {
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)cpus : 1;
        atomic_store(&pool.threads, threads);
    }
    if (threads > 1 && count > 1 && start_workers(threads) > 0) {
        while (atomic_load(&pool.readers) != 0) CPU_RELAX();
        pool.task = task;
        pool.context = context;
        pool.count = count;
        atomic_store(&pool.done, 0);
        atomic_store(&pool.next, 0);
        pthread_mutex_lock(&pool.sleep_lock);
        atomic_fetch_add(&pool.generation, 1);
        if (pool.sleepers > 0) pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
        take_indices();
        while (atomic_load_explicit(&pool.done, memory_order_acquire) < count) CPU_RELAX();
        atomic_store(&pool.next, CLOSED);
    } else {
        for (int i = 0; i < count; i++) task(context, i);
    }
    atomic_store(&pool.owner, 0);
    return 1;
}
