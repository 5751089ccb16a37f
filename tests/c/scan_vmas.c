/*
 * A program written against upstream etmem's scan library (it includes upstream's
 * header name): checks the argument rules of spec §10, then lists the anonymous VMAs
 * of process PID with their pages' access counts after PASSES passes, one line each:
 *
 *   vma START-END PERMS pages N min MIN max MAX
 *
 * Usage: scan_vmas PID PASSES. Exits non-zero, saying why, when a check fails.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "etmemd_scan_export.h"

_Static_assert(sizeof(struct vma) == 320, "struct vma as upstream lays it out");
_Static_assert(offsetof(struct vma, offset) == 24, "struct vma as upstream lays it out");
_Static_assert(offsetof(struct vma, path) == 40, "struct vma as upstream lays it out");
_Static_assert(offsetof(struct vma, next) == 312, "struct vma as upstream lays it out");
_Static_assert(sizeof(struct vmas) == 16, "struct vmas as upstream lays it out");
_Static_assert(sizeof(struct page_refs) == 24, "struct page_refs as upstream lays it out");
_Static_assert(offsetof(struct page_refs, type) == 12, "struct page_refs as upstream lays it out");

#define CHECK(cond) do { if (!(cond)) { printf("FAILED: %s (line %d)\n", #cond, __LINE__); return 1; } } while (0)

static int argument_rules(const char *pid)
{
    char *flags[2] = {"rd", NULL};
    struct page_refs *refs = NULL;
    struct vmas *vmas;
    struct vma *vma;

    etmemd_scan_exit();                      /* exit without init is harmless */
    CHECK(etmemd_scan_init() == 0);
    CHECK(etmemd_scan_init() != 0);          /* init twice fails */

    CHECK(etmemd_get_vmas(NULL, flags, 1, false) == NULL);
    CHECK(etmemd_get_vmas("0", flags, 1, false) == NULL);
    CHECK(etmemd_get_vmas("1-", flags, 1, false) == NULL);
    flags[0] = "r ";
    CHECK(etmemd_get_vmas(pid, flags, 1, false) == NULL);
    flags[0] = "rd ";
    CHECK(etmemd_get_vmas(pid, flags, 1, false) == NULL);
    flags[0] = NULL;
    CHECK(etmemd_get_vmas(pid, flags, 1, false) == NULL);
    etmemd_free_vmas(NULL);

    etmemd_free_page_refs(NULL);
    CHECK(etmemd_get_page_refs(NULL, pid, &refs, SCAN_AS_HUGE | SCAN_IGN_HOST) == -1);
    /* A list the caller built, with a VMA that ends before it starts. */
    vmas = calloc(1, sizeof(*vmas));
    vma = calloc(1, sizeof(*vma));
    CHECK(vmas != NULL && vma != NULL);
    vma->start = 0xff;
    vma->end = 0;
    vmas->vma_cnt = 1;
    vmas->vma_list = vma;
    CHECK(etmemd_get_page_refs(vmas, pid, &refs, 0) == -1);
    etmemd_free_vmas(vmas);

    vmas = etmemd_get_vmas(pid, NULL, 0, true);
    CHECK(vmas != NULL && vmas->vma_cnt > 0);
    CHECK(etmemd_get_page_refs(vmas, "0", &refs, 0) == -1 && refs == NULL);
    CHECK(etmemd_get_page_refs(vmas, NULL, &refs, 0) == -1 && refs == NULL);
    CHECK(etmemd_get_page_refs(vmas, "--", &refs, 0) == -1 && refs == NULL);
    CHECK(etmemd_get_page_refs(vmas, pid, NULL, 0) == -1);
    etmemd_scan_exit();
    CHECK(etmemd_get_page_refs(vmas, pid, &refs, 0) == -1 && refs == NULL);  /* not started */
    etmemd_free_vmas(vmas);
    return 0;
}

int main(int argc, char **argv)
{
    char *rw[2] = {"rd", "wr"};
    struct page_refs *refs = NULL, *p;
    struct vmas *vmas, *flagged;
    struct vma *v;
    uint64_t n, i, last = 0;
    int pass, passes;
    const char *pid;

    if (argc != 3) {
        fprintf(stderr, "usage: scan_vmas PID PASSES\n");
        return 2;
    }
    pid = argv[1];
    passes = atoi(argv[2]);
    if (argument_rules(pid) != 0)
        return 1;

    CHECK(etmemd_scan_init() == 0);
    vmas = etmemd_get_vmas(pid, NULL, 0, true);
    CHECK(vmas != NULL);
    /* Tracking starts with the first call; each later one adds a pass. */
    for (pass = 0; pass <= passes; pass++) {
        if (pass > 0)
            sleep(1);
        CHECK(etmemd_get_page_refs(vmas, pid, &refs, 0) == 0);
    }
    for (p = refs; p != NULL; p = p->next) {
        CHECK(p->addr >= last);              /* sorted, no duplicates */
        CHECK(p == refs || p->addr > last);
        CHECK(p->type == PTE_TYPE || p->type == PMD_TYPE || p->type == PUD_TYPE);
        last = p->addr;
    }

    p = refs;
    for (v = vmas->vma_list, i = 0; i < vmas->vma_cnt; i++, v = v->next) {
        int min = -1, max = -1;

        CHECK(v != NULL && v->start < v->end);
        CHECK(!v->stat[VMA_STAT_MAY_SHARE] && !v->stat[VMA_STAT_EXEC]);
        for (n = 0; p != NULL && p->addr < v->end; p = p->next) {
            if (p->addr < v->start)
                continue;
            n++;
            if (min < 0 || p->count < min)
                min = p->count;
            if (p->count > max)
                max = p->count;
        }
        printf("vma %lx-%lx %c%c%c%c pages %lu min %d max %d\n",
               (unsigned long)v->start, (unsigned long)v->end,
               v->stat[VMA_STAT_READ] ? 'r' : '-', v->stat[VMA_STAT_WRITE] ? 'w' : '-',
               v->stat[VMA_STAT_EXEC] ? 'x' : '-', v->stat[VMA_STAT_MAY_SHARE] ? 's' : 'p',
               (unsigned long)n, min, max);
    }

    /* VMAs with both flags in smaps VmFlags: the same anonymous read-write regions. */
    flagged = etmemd_get_vmas(pid, rw, 2, true);
    CHECK(flagged != NULL);
    for (v = flagged->vma_list; v != NULL; v = v->next)
        printf("flagged %lx-%lx\n", (unsigned long)v->start, (unsigned long)v->end);

    etmemd_free_page_refs(refs);
    etmemd_free_vmas(flagged);
    etmemd_free_vmas(vmas);
    etmemd_scan_exit();
    printf("ok\n");
    return 0;
}
