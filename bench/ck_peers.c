// SPDX-License-Identifier: MIT
// Thin wrappers around Concurrency Kit (see ck_peers.h).
#include "ck_peers.h"

#include <ck_brlock.h>
#include <ck_bytelock.h>
#include <ck_ring.h>
#include <stdlib.h>

// Cache-line aligned and padded, so no two peers' objects share a line.
static void* alloc_lines(size_t bytes) {
    return aligned_alloc(CK_MD_CACHELINE, (bytes + 2 * CK_MD_CACHELINE - 1) / CK_MD_CACHELINE * CK_MD_CACHELINE);
}

struct pc_ck_ring {
    ck_ring_t ring;  // ck_ring keeps producer and consumer indices on separate lines
    ck_ring_buffer_t* buf;
};

struct pc_ck_ring* pc_ck_ring_new(unsigned size) {
    struct pc_ck_ring* r = alloc_lines(sizeof *r);
    if (r == NULL) return NULL;
    ck_ring_init(&r->ring, size);
    r->buf = alloc_lines(sizeof(ck_ring_buffer_t) * size);
    return r;
}
void pc_ck_ring_free(struct pc_ck_ring* r) {
    free(r->buf);
    free(r);
}
bool pc_ck_ring_push(struct pc_ck_ring* r, uint64_t v) {
    return ck_ring_enqueue_mpsc(&r->ring, r->buf, (void*)(uintptr_t)v);
}
bool pc_ck_ring_pop(struct pc_ck_ring* r, uint64_t* v) {
    void* p;
    if (!ck_ring_dequeue_mpsc(&r->ring, r->buf, &p)) return false;
    *v = (uint64_t)(uintptr_t)p;
    return true;
}

struct pc_ck_brlock {
    ck_brlock_t lock;
};
struct pc_ck_brlock_reader {
    ck_brlock_reader_t r;
};
struct pc_ck_brlock* pc_ck_brlock_new(void) {
    struct pc_ck_brlock* l = alloc_lines(sizeof *l);
    ck_brlock_init(&l->lock);
    return l;
}
void pc_ck_brlock_free(struct pc_ck_brlock* l) { free(l); }
struct pc_ck_brlock_reader* pc_ck_brlock_register(struct pc_ck_brlock* l) {
    struct pc_ck_brlock_reader* r = alloc_lines(sizeof *r);
    ck_brlock_read_register(&l->lock, &r->r);
    return r;
}
void pc_ck_brlock_unregister(struct pc_ck_brlock* l, struct pc_ck_brlock_reader* r) {
    ck_brlock_read_unregister(&l->lock, &r->r);
    free(r);
}
void pc_ck_brlock_read_lock(struct pc_ck_brlock* l, struct pc_ck_brlock_reader* r) {
    ck_brlock_read_lock(&l->lock, &r->r);
}
void pc_ck_brlock_read_unlock(struct pc_ck_brlock_reader* r) { ck_brlock_read_unlock(&r->r); }
void pc_ck_brlock_write_lock(struct pc_ck_brlock* l) { ck_brlock_write_lock(&l->lock); }
void pc_ck_brlock_write_unlock(struct pc_ck_brlock* l) { ck_brlock_write_unlock(&l->lock); }

struct pc_ck_bytelock {
    ck_bytelock_t lock;
};
struct pc_ck_bytelock* pc_ck_bytelock_new(void) {
    struct pc_ck_bytelock* l = alloc_lines(sizeof *l);
    ck_bytelock_init(&l->lock);
    return l;
}
void pc_ck_bytelock_free(struct pc_ck_bytelock* l) { free(l); }
void pc_ck_bytelock_read_lock(struct pc_ck_bytelock* l, unsigned slot) { ck_bytelock_read_lock(&l->lock, slot); }
void pc_ck_bytelock_read_unlock(struct pc_ck_bytelock* l, unsigned slot) { ck_bytelock_read_unlock(&l->lock, slot); }
void pc_ck_bytelock_write_lock(struct pc_ck_bytelock* l, unsigned slot) { ck_bytelock_write_lock(&l->lock, slot); }
void pc_ck_bytelock_write_unlock(struct pc_ck_bytelock* l) { ck_bytelock_write_unlock(&l->lock); }
