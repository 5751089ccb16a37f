/*
 * etmem scan library (libetmemd_scan.so): the scan API of upstream etmem's
 * etmemd_scan_export.h, with the same names, structs (LP64 layouts, field order) and
 * signatures, so a program written for upstream's library builds and runs unchanged.
 *
 *   cc prog.c -I/usr/include -letmemd_scan      (#include <etmem/scan.h>, or upstream's
 *                                                #include "etmemd_scan_export.h")
 *
 * What differs from upstream (see docs/porting-plugins.md):
 *  - Tracking uses the best interface the kernel has, in this order: openEuler's
 *    /proc/PID/idle_pages (the etmem_scan module; upstream's only one), idle page
 *    tracking (page_idle), soft-dirty bits (writes only), and smaps `Referenced`
 *    (any kernel, VMA-grained: every resident page of a VMA that was referenced counts
 *    as accessed). DAMON is never used here (its kdamonds are the damon engine's).
 *  - The first etmemd_get_page_refs() for a list starts tracking: it clears the kernel's
 *    access state and records every resident page with count 0. Each later call adds
 *    one pass, the accesses made since the call before. (Upstream's first pass counted
 *    every access since the kernel's state was last cleared, or ever.) So for `loop`
 *    passes of accesses, call it loop + 1 times.
 *  - Tracking is kept per process between calls: a call adds a pass when *page_refs is
 *    not NULL and it names the pid and the VMAs of the last call for that pid;
 *    otherwise tracking of that pid starts over (pages merged with weight 0).
 *  - struct vma's path holds the whole name (upstream: up to the first space, with the
 *    line's '\n'); it is empty for anonymous memory and for names of 256 bytes or more.
 *  - Functions are thread-safe. Nothing is logged: failures are return values only.
 */
#ifndef ETMEM_SCAN_H
#define ETMEM_SCAN_H

#include <stdint.h>
#include <stdbool.h>
#include <fcntl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMA_PATH_STR_LEN        256
#define VMA_MAJOR_MINOR_LEN     8

/* Flags for etmemd_get_page_refs(), passed to the etmem_scan module (other backends
 * have no such modes and ignore them). */
#define SCAN_AS_HUGE            0100000000      /* treat normal VM pages as VM hugepages */
#define SCAN_IGN_HOST           0200000000      /* ignore host accesses when scanning a VM */
#define VMA_SCAN_FLAG           0x1000          /* scan only VMAs marked for swapping */

/* The size class of a page. */
enum page_type {
    PTE_TYPE = 0,               /* base page (4 KiB on x86-64) */
    PMD_TYPE,                   /* PMD-mapped huge page (2 MiB) */
    PUD_TYPE,                   /* PUD-mapped huge page (1 GiB) */
    PAGE_TYPE_INVAL,
};

/* One page and its access count; a list sorted by address. */
struct page_refs {
    uint64_t addr;              /* the page's first address */
    int count;                  /* +1 per pass accessed, +3 per pass written */
    enum page_type type;        /* size class */

    struct page_refs *next;     /* the next page, or NULL */
};

/* Declared by upstream's public header; no function of the library takes it. */
struct page_sort {
    struct page_refs **page_refs_sort;
    struct page_refs **page_refs;
    int loop;
};

/* Indices of struct vma's stat[]. */
enum {
    VMA_STAT_READ = 0,
    VMA_STAT_WRITE,
    VMA_STAT_EXEC,
    VMA_STAT_MAY_SHARE,
    VMA_STAT_INIT,
};

/* One mapping, as /proc/PID/maps lists it. */
struct vma {
    uint64_t start;                     /* first address */
    uint64_t end;                       /* first address past the mapping */
    bool stat[VMA_STAT_INIT];           /* r, w, x, and "not private" */
    uint64_t offset;                    /* offset in the mapped file */
    uint64_t inode;                     /* inode of the mapped file, 0 if none */
    char path[VMA_PATH_STR_LEN];        /* name of the mapping (see above) */
    char major[VMA_MAJOR_MINOR_LEN];    /* device major number, hex as in maps */
    char minor[VMA_MAJOR_MINOR_LEN];    /* device minor number, hex as in maps */

    struct vma *next;                   /* the next mapping, or NULL */
};

/* A process's mappings, in address order. */
struct vmas {
    uint64_t vma_cnt;                   /* number of mappings in vma_list */

    struct vma *vma_list;
};

/* Start the library: 0, or -1 when already started. etmemd_get_page_refs needs it. */
int etmemd_scan_init(void);
/* Stop the library and forget every list's tracking. */
void etmemd_scan_exit(void);

/* The mappings of process `pid` (decimal) having every one of the `vmflags_num`
 * two-letter smaps VmFlags in `vmflags_array` (none: all), and only anonymous ones
 * (private, not executable, not file-backed or writable) if `is_anon_only`. NULL on any
 * error (no such process, a flag that is not two letters...); no mapping is a valid
 * result with vma_cnt 0. Works without etmemd_scan_init. Free with etmemd_free_vmas. */
struct vmas *etmemd_get_vmas(const char *pid, char **vmflags_array, int vmflags_num,
                             bool is_anon_only);
/* Free what etmemd_get_vmas returned (or a list made with calloc); NULL is fine. */
void etmemd_free_vmas(struct vmas *vmas);

/* One pass over `vmas` of process `pid`, merged into the address-sorted list *page_refs
 * (new pages inserted, counts of known ones increased); `flags`: SCAN_AS_HUGE,
 * SCAN_IGN_HOST, VMA_SCAN_FLAG. 0, or -1 when not started, on a NULL argument, a bad
 * pid, a mapping that ends before it starts, is not page aligned or overlaps another,
 * or a failed scan (pages added before the failure stay in the list). */
int etmemd_get_page_refs(const struct vmas *vmas, const char *pid, struct page_refs **page_refs,
                         int flags);
/* Free a list of pages (or one made with calloc); NULL is fine. */
void etmemd_free_page_refs(struct page_refs *page_refs);

#ifdef __cplusplus
}
#endif

#endif /* ETMEM_SCAN_H */
