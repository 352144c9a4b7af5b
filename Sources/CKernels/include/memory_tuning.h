#ifndef MEMORY_TUNING_H
#define MEMORY_TUNING_H

// Training allocates and frees about a gigabyte of activations every step. glibc serves
// allocations above 32 MiB with fresh mmap()s and returns them on free(), so every step pays
// page faults and kernel zeroing for the whole working set again (measured: ~7% of a training
// step in clear_page). Raising the mmap and trim thresholds keeps freed memory in the heap for
// the next step; peak resident memory is unchanged.
void memory_keep_freed_pages(void);

#endif
