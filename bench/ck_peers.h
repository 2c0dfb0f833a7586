// SPDX-License-Identifier: MIT
// Concurrency Kit peers for the benchmarks. ck's headers are C only (they
// convert void* implicitly and return false from pointer functions), so
// bench/ck_peers.c wraps the operations measured, and the benchmarks are
// linked with link-time optimization so the wrappers inline back into the
// measured loops (bench/CMakeLists.txt).
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ck_ring in multi-producer / single-consumer mode; size a power of two.
struct pc_ck_ring;
struct pc_ck_ring* pc_ck_ring_new(unsigned size);
void pc_ck_ring_free(struct pc_ck_ring* r);
bool pc_ck_ring_push(struct pc_ck_ring* r, uint64_t v);
bool pc_ck_ring_pop(struct pc_ck_ring* r, uint64_t* v);

// ck_brlock, the big-reader lock: each reader thread registers a record.
struct pc_ck_brlock;
struct pc_ck_brlock_reader;
struct pc_ck_brlock* pc_ck_brlock_new(void);
void pc_ck_brlock_free(struct pc_ck_brlock* l);
struct pc_ck_brlock_reader* pc_ck_brlock_register(struct pc_ck_brlock* l);
void pc_ck_brlock_unregister(struct pc_ck_brlock* l, struct pc_ck_brlock_reader* r);
void pc_ck_brlock_read_lock(struct pc_ck_brlock* l, struct pc_ck_brlock_reader* r);
void pc_ck_brlock_read_unlock(struct pc_ck_brlock_reader* r);
void pc_ck_brlock_write_lock(struct pc_ck_brlock* l);
void pc_ck_brlock_write_unlock(struct pc_ck_brlock* l);

// ck_bytelock: readers with a slot (1..56 on x86-64) set a byte of their
// own; others share a counter.
struct pc_ck_bytelock;
struct pc_ck_bytelock* pc_ck_bytelock_new(void);
void pc_ck_bytelock_free(struct pc_ck_bytelock* l);
void pc_ck_bytelock_read_lock(struct pc_ck_bytelock* l, unsigned slot);
void pc_ck_bytelock_read_unlock(struct pc_ck_bytelock* l, unsigned slot);
void pc_ck_bytelock_write_lock(struct pc_ck_bytelock* l, unsigned slot);
void pc_ck_bytelock_write_unlock(struct pc_ck_bytelock* l);

#ifdef __cplusplus
}
#endif
