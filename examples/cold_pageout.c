/*
 * cold_pageout.so: an example .so plug-in engine for an etmemd built with the dlopen
 * feature. For each started task a thread of its own, every cycle, scans the task's
 * processes with libetmemd_scan.so (`loop` passes `interval` seconds apart, as the
 * project says) and swaps out every page that no pass saw accessed, with
 * process_madvise(MADV_PAGEOUT); then it sleeps `sleep` seconds. `etmem engine stats`
 * answers how much it swapped out.
 *
 * Build and install (root:root, mode 0700, as etmemd demands):
 *
 *   gcc -shared -fPIC -O2 -I/usr/local/include cold_pageout.c -o cold_pageout.so \
 *       -letmemd_scan -lpthread
 *   install -o root -g root -m 0700 cold_pageout.so /usr/lib/etmem/cold_pageout.so
 *
 * and configure it:
 *
 *   [engine]                                 [task]
 *   name=thirdparty                          project=test
 *   project=test                             engine=cold_pageout
 *   eng_name=cold_pageout                    name=background
 *   libname=/usr/lib/etmem/cold_pageout.so   type=name
 *   ops_name=cold_pageout_ops                value=mysqld
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <etmem/engine.h>
#include <etmem/scan.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define MAX_PIDS 64
#define BATCH 512

struct task_state {
    struct etmem_task *tk;
    pthread_t thread;
    atomic_int stop;
    int loop, interval, sleep;
    atomic_ulong swapped;
};

static int project_int(struct etmem_engine *eng, const char *key, int fallback)
{
    const char *v = etmem_project_get(eng, key);
    return v ? atoi(v) : fallback;
}

/* Sleep `seconds`, a tenth of a second at a time; 0 if told to stop meanwhile. */
static int pause_for(struct task_state *ts, int seconds)
{
    struct timespec tenth = {0, 100 * 1000 * 1000};
    int i;

    for (i = 0; i < seconds * 10; i++) {
        if (atomic_load(&ts->stop))
            return 0;
        nanosleep(&tenth, NULL);
    }
    return !atomic_load(&ts->stop);
}

/* Swap out `n` ranges of process `pid`: the bytes the kernel took. */
static unsigned long page_out(unsigned int pid, struct iovec *iov, size_t n)
{
    long fd = syscall(SYS_pidfd_open, pid, 0);
    long done;

    if (fd < 0 || n == 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    done = syscall(SYS_process_madvise, fd, iov, n, MADV_PAGEOUT, 0);
    close(fd);
    return done > 0 ? (unsigned long)done : 0;
}

static unsigned long page_size_of(enum page_type type)
{
    unsigned long base = (unsigned long)sysconf(_SC_PAGESIZE);

    return type == PMD_TYPE ? base << 9 : type == PUD_TYPE ? base << 18 : base;
}

/* One cycle for one process: scan, then swap out what no pass saw accessed. */
static void cycle(struct task_state *ts, unsigned int pid)
{
    struct page_refs *refs = NULL, *p;
    struct iovec iov[BATCH];
    struct vmas *vmas;
    char name[16];
    size_t n = 0;
    int pass;

    snprintf(name, sizeof(name), "%u", pid);
    vmas = etmemd_get_vmas(name, NULL, 0, true);
    if (vmas == NULL)
        return;
    /* The first call starts tracking; each later one adds a pass. */
    for (pass = 0; pass <= ts->loop; pass++) {
        if (pass > 0 && !pause_for(ts, ts->interval))
            goto out;
        if (etmemd_get_page_refs(vmas, name, &refs, 0) != 0)
            goto out;
    }
    for (p = refs; p != NULL; p = p->next) {
        unsigned long len = page_size_of(p->type);

        if (p->count != 0)
            continue;
        if (n > 0 && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == (char *)p->addr) {
            iov[n - 1].iov_len += len;
            continue;
        }
        if (n == BATCH) {
            atomic_fetch_add(&ts->swapped, page_out(pid, iov, n));
            n = 0;
        }
        iov[n].iov_base = (void *)p->addr;
        iov[n].iov_len = len;
        n++;
    }
    atomic_fetch_add(&ts->swapped, page_out(pid, iov, n));
out:
    etmemd_free_page_refs(refs);
    etmemd_free_vmas(vmas);
}

static void *run(void *arg)
{
    struct task_state *ts = arg;
    unsigned int pids[MAX_PIDS];

    while (!atomic_load(&ts->stop)) {
        long n = etmem_task_pids(ts->tk, pids, MAX_PIDS);
        long i;

        for (i = 0; i < n && i < MAX_PIDS && !atomic_load(&ts->stop); i++)
            cycle(ts, pids[i]);
        if (!pause_for(ts, ts->sleep))
            break;
    }
    return NULL;
}

static int fill_eng_params(const struct etmem_config *config, struct etmem_engine *eng)
{
    (void)config;
    (void)eng;
    etmemd_scan_init();  /* -1 when another engine started it already: fine */
    return 0;
}

static int fill_task_params(const struct etmem_config *config, struct etmem_task *tk)
{
    struct task_state *ts = calloc(1, sizeof(*ts));

    (void)config;
    if (ts == NULL)
        return -1;
    ts->tk = tk;
    return etmem_task_set_data(tk, ts);
}

static void clear_task_params(struct etmem_task *tk)
{
    free(etmem_task_data(tk));
    etmem_task_set_data(tk, NULL);
}

static int start_task(struct etmem_engine *eng, struct etmem_task *tk)
{
    struct task_state *ts = etmem_task_data(tk);

    if (ts == NULL)
        return -1;
    ts->loop = project_int(eng, "loop", 1);
    ts->interval = project_int(eng, "interval", 1);
    ts->sleep = project_int(eng, "sleep", 1);
    atomic_store(&ts->stop, 0);
    if (pthread_create(&ts->thread, NULL, run, ts) != 0)
        return -1;
    etmem_log(ETMEM_LOG_INFO, "cold_pageout: task %s started", etmem_task_name(tk));
    return 0;
}

static void stop_task(struct etmem_engine *eng, struct etmem_task *tk)
{
    struct task_state *ts = etmem_task_data(tk);

    (void)eng;
    atomic_store(&ts->stop, 1);
    pthread_join(ts->thread, NULL);
}

static int eng_mgt_func(struct etmem_engine *eng, struct etmem_task *tk, const char *cmd,
                        struct etmem_answer *answer)
{
    struct task_state *ts = tk ? etmem_task_data(tk) : NULL;

    (void)eng;
    if (strcmp(cmd, "stats") != 0) {
        etmem_answer_printf(answer, "unknown command %s: try stats\n", cmd);
        return 1;
    }
    if (ts == NULL) {
        etmem_answer_printf(answer, "name a task with -t\n");
        return 1;
    }
    return etmem_answer_printf(answer, "swapped out %lu bytes\n", atomic_load(&ts->swapped));
}

struct etmem_engine_ops cold_pageout_ops = {
    ETMEM_ENGINE_OPS_INIT,
    .fill_eng_params = fill_eng_params,
    .fill_task_params = fill_task_params,
    .clear_task_params = clear_task_params,
    .start_task = start_task,
    .stop_task = stop_task,
    .eng_mgt_func = eng_mgt_func,
};
