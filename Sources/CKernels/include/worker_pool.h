#ifndef WORKER_POOL_H
#define WORKER_POOL_H

// A decode step runs a few hundred short parallel loops (one per projection, one for attention),
// each well under a millisecond. Handing each to Dispatch parks and wakes its threads every time:
// `lora bench swap` measured 146,000 context switches and 1.43 of 2 CPUs busy, against 751
// and 1.90 with these workers, which spin for a short while after each loop waiting for the
// next, and sleep only when work stops coming (so an idle process uses no CPU). Batched decode
// went from 343 to 430 tokens/s, single-sequence decode from 85 to 144.

// Runs task(context, i) for every i in [0, count) on the calling thread and the pool's workers,
// returning when all have finished. Returns 0, having run nothing, when the pool is busy (a
// loop on another thread, or a loop nested in one of its tasks): the caller then runs the loop
// another way.
int worker_pool_run(int count, void *context, void (*task)(void *context, int index));

// Threads taking part in each loop, the caller included (default: the number of CPUs).
void worker_pool_set_threads(int threads);

#endif
