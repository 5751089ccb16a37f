/*
 * etmem plug-in engines (.so form): what a shared object loaded by etmemd as a
 * `thirdparty` engine implements and what it may call. Needs an etmemd built with the
 * `dlopen` feature (the static binary runs plug-ins as policy processes, exec=).
 *
 * [engine]                               [task]
 * name=thirdparty                        project=test
 * project=test                           engine=my_engine
 * eng_name=my_engine                     name=background1
 * libname=/usr/lib/etmem/my_engine.so    type=pid
 * ops_name=my_engine_ops                 value=12345
 * engine_private_key=1024                task_private_key=2048
 *
 * The library must be owned by root:root with mode 0500 or 0700; etmemd checks the file
 * it opened and loads that file (RTLD_NOW | RTLD_LOCAL), at `obj add`. `ops_name` names
 * a `struct etmem_engine_ops` of the library, made with ETMEM_ENGINE_OPS_INIT; a library
 * built for another ETMEM_ENGINE_ABI_VERSION is refused at `obj add`.
 *
 * The nine callbacks are upstream etmem's (struct engine_ops, spec §8.2) in the same
 * order, called at the same times, with the same meaning of their results; any may be
 * NULL. Instead of etmemd's structs and a GLib GKeyFile they get opaque handles, read
 * through the etmem_* functions below. docs/porting-plugins.md shows how to port an
 * upstream plug-in.
 *
 *  fill_eng_params    at `obj add` of the engine, with its [engine] group. Non-zero:
 *                     the engine is not added (clear_eng_params is not called).
 *  clear_eng_params   when the engine is deleted, after all its tasks were.
 *  fill_task_params   at `obj add` of a task, with its [task] group. Non-zero: the task
 *                     is not added (clear_task_params is not called).
 *  clear_task_params  when the task is deleted (after stop_task if it was started), or
 *                     when start_task failed at its `obj add`.
 *  start_task         at `project start`, for each task; at `obj add` of a task of a
 *                     started project. Non-zero: the start (or the add) fails, and the
 *                     tasks this start had started are stopped again. NULL: a project
 *                     with this engine cannot start.
 *  stop_task          at `project stop`, and when a task of a started project is deleted.
 *  alloc_pid_params   while a task is started, each time etmemd finds a process of the
 *                     task (at each cycle: the process `type=` and `value=` name, then
 *                     its direct children). Non-zero: that process is not recorded
 *                     (tried again at the next cycle).
 *  free_pid_params    when a recorded process is gone (exited, no longer a child), and
 *                     for every recorded process when the task stops.
 *  eng_mgt_func       `etmem engine CMD -n PROJECT -e ENGINE [-t TASK]` on a started
 *                     project; `tk` is NULL without -t. What it writes with
 *                     etmem_answer_write/etmem_answer_printf is the client's output.
 *                     0: success; non-zero: failure (the output is still shown). NULL:
 *                     the command fails ("no command handler").
 *
 * Callbacks of one engine are never called at the same time. A plug-in's own threads
 * may call the etmem_* functions at any time while their handle lives: an engine until
 * clear_eng_params returns, a task until clear_task_params returns, a process until
 * free_pid_params returns, a config and an answer only during the callback given them.
 * A stale or foreign handle is harmless: the functions return NULL, -1 or 0.
 */
#ifndef ETMEM_ENGINE_H
#define ETMEM_ENGINE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface; etmemd loads only plug-ins built for its own. */
#define ETMEM_ENGINE_ABI_VERSION 1

struct etmem_engine;    /* one thirdparty engine of a project */
struct etmem_task;      /* one task of that engine */
struct etmem_task_pid;  /* one process of a started task */
struct etmem_config;    /* one [engine] or [task] group of the config file */
struct etmem_answer;    /* the output of an engine command */

/* What `ops_name` names in the library. */
struct etmem_engine_ops {
    unsigned int abi_version;   /* ETMEM_ENGINE_ABI_VERSION, set by ETMEM_ENGINE_OPS_INIT */
    int  (*fill_eng_params)(const struct etmem_config *config, struct etmem_engine *eng);
    void (*clear_eng_params)(struct etmem_engine *eng);
    int  (*fill_task_params)(const struct etmem_config *config, struct etmem_task *tk);
    void (*clear_task_params)(struct etmem_task *tk);
    int  (*start_task)(struct etmem_engine *eng, struct etmem_task *tk);
    void (*stop_task)(struct etmem_engine *eng, struct etmem_task *tk);
    int  (*alloc_pid_params)(struct etmem_engine *eng, struct etmem_task_pid *tpid);
    void (*free_pid_params)(struct etmem_engine *eng, struct etmem_task_pid *tpid);
    int  (*eng_mgt_func)(struct etmem_engine *eng, struct etmem_task *tk, const char *cmd,
                         struct etmem_answer *answer);
};

/* struct etmem_engine_ops my_engine_ops = { ETMEM_ENGINE_OPS_INIT, .start_task = ... }; */
#define ETMEM_ENGINE_OPS_INIT .abi_version = ETMEM_ENGINE_ABI_VERSION

/* Log levels, as etmemd -l numbers them. */
#define ETMEM_LOG_DEBUG 0
#define ETMEM_LOG_INFO  1
#define ETMEM_LOG_WARN  2
#define ETMEM_LOG_ERR   3

/*
 * What etmemd offers, as a table of functions: etmemd sets `etmem_host` when it loads
 * the library, before any callback. (An executable cannot export functions to a
 * library reliably, so they come this way.) Call them through the etmem_* functions
 * below; fields are only ever added at the end, with `size` telling how many there are.
 */
struct etmem_host {
    unsigned int abi_version;
    unsigned int size;          /* sizeof(struct etmem_host) in etmemd */
    const char *(*config_get)(const struct etmem_config *cfg, const char *key);
    const char *(*config_key)(const struct etmem_config *cfg, size_t i);
    const char *(*engine_name)(const struct etmem_engine *eng);
    const char *(*project_get)(const struct etmem_engine *eng, const char *key);
    void *(*engine_data)(const struct etmem_engine *eng);
    int (*engine_set_data)(struct etmem_engine *eng, void *data);
    const char *(*task_name)(const struct etmem_task *tk);
    const char *(*task_type)(const struct etmem_task *tk);
    const char *(*task_value)(const struct etmem_task *tk);
    int (*task_max_threads)(const struct etmem_task *tk);
    int (*task_swap_flag)(const struct etmem_task *tk);
    struct etmem_engine *(*task_engine)(const struct etmem_task *tk);
    void *(*task_data)(const struct etmem_task *tk);
    int (*task_set_data)(struct etmem_task *tk, void *data);
    long (*task_pids)(const struct etmem_task *tk, unsigned int *pids, size_t max);
    unsigned int (*pid_value)(const struct etmem_task_pid *tpid);
    struct etmem_task *(*pid_task)(const struct etmem_task_pid *tpid);
    void *(*pid_data)(const struct etmem_task_pid *tpid);
    int (*pid_set_data)(struct etmem_task_pid *tpid, void *data);
    int (*answer_write)(struct etmem_answer *answer, const char *text, size_t len);
    void (*log)(int level, const char *msg);
};

/* Set by etmemd; one per library (a weak definition shared by its files). */
__attribute__((weak, visibility("default"))) const struct etmem_host *etmem_host = NULL;

/* The value of `key` in the group (the last one written), or NULL when it has none.
 * Valid during the callback; copy it (strdup) to keep it. */
static inline const char *etmem_config_get(const struct etmem_config *cfg, const char *key)
{
    return etmem_host ? etmem_host->config_get(cfg, key) : NULL;
}

/* The name of the group's key number i (0, 1, ...), or NULL past the last. */
static inline const char *etmem_config_key(const struct etmem_config *cfg, size_t i)
{
    return etmem_host ? etmem_host->config_key(cfg, i) : NULL;
}

/* The engine's eng_name. */
static inline const char *etmem_engine_name(const struct etmem_engine *eng)
{
    return etmem_host ? etmem_host->engine_name(eng) : NULL;
}

/* A setting of the engine's project, as text: "name", "scan_type" (page, region or
 * psi), "loop", "interval" (seconds between the scans of a cycle), "sleep" (seconds
 * between cycles), "sysmem_threshold", "swapcache_high_wmark", "swapcache_low_wmark";
 * NULL when the project has no such setting. (etmem's interval and sleep are the user
 * guide's; upstream's code used them the other way round.) */
static inline const char *etmem_project_get(const struct etmem_engine *eng, const char *key)
{
    return etmem_host ? etmem_host->project_get(eng, key) : NULL;
}

/* The plug-in's own pointer for the engine (upstream's eng->params), NULL at first. */
static inline void *etmem_engine_data(const struct etmem_engine *eng)
{
    return etmem_host ? etmem_host->engine_data(eng) : NULL;
}

/* Set it: 0, or -1 for a stale handle. */
static inline int etmem_engine_set_data(struct etmem_engine *eng, void *data)
{
    return etmem_host ? etmem_host->engine_set_data(eng, data) : -1;
}

/* The task's name, type ("pid" or "name") and value, as configured. */
static inline const char *etmem_task_name(const struct etmem_task *tk)
{
    return etmem_host ? etmem_host->task_name(tk) : NULL;
}

static inline const char *etmem_task_type(const struct etmem_task *tk)
{
    return etmem_host ? etmem_host->task_type(tk) : NULL;
}

static inline const char *etmem_task_value(const struct etmem_task *tk)
{
    return etmem_host ? etmem_host->task_value(tk) : NULL;
}

/* The task's max_threads (default 1) and swap_flag (1 for yes, 0 for no); -1 for a
 * stale handle. */
static inline int etmem_task_max_threads(const struct etmem_task *tk)
{
    return etmem_host ? etmem_host->task_max_threads(tk) : -1;
}

static inline int etmem_task_swap_flag(const struct etmem_task *tk)
{
    return etmem_host ? etmem_host->task_swap_flag(tk) : -1;
}

/* The engine the task belongs to. */
static inline struct etmem_engine *etmem_task_engine(const struct etmem_task *tk)
{
    return etmem_host ? etmem_host->task_engine(tk) : NULL;
}

/* The plug-in's own pointer for the task (upstream's tk->params), NULL at first. */
static inline void *etmem_task_data(const struct etmem_task *tk)
{
    return etmem_host ? etmem_host->task_data(tk) : NULL;
}

static inline int etmem_task_set_data(struct etmem_task *tk, void *data)
{
    return etmem_host ? etmem_host->task_set_data(tk, data) : -1;
}

/* The pids of the task's recorded processes (those alloc_pid_params accepted; the main
 * process first, then its children): up to `max` are stored in `pids`; the result is
 * how many there are (more than `max` when they did not fit), or -1. */
static inline long etmem_task_pids(const struct etmem_task *tk, unsigned int *pids, size_t max)
{
    return etmem_host ? etmem_host->task_pids(tk, pids, max) : -1;
}

/* A recorded process's pid (0 for a stale handle), and its task. */
static inline unsigned int etmem_pid_value(const struct etmem_task_pid *tpid)
{
    return etmem_host ? etmem_host->pid_value(tpid) : 0;
}

static inline struct etmem_task *etmem_pid_task(const struct etmem_task_pid *tpid)
{
    return etmem_host ? etmem_host->pid_task(tpid) : NULL;
}

/* The plug-in's own pointer for the process (upstream's tk_pid->params). */
static inline void *etmem_pid_data(const struct etmem_task_pid *tpid)
{
    return etmem_host ? etmem_host->pid_data(tpid) : NULL;
}

static inline int etmem_pid_set_data(struct etmem_task_pid *tpid, void *data)
{
    return etmem_host ? etmem_host->pid_set_data(tpid, data) : -1;
}

/* Add `len` bytes to the command's output: 0, or -1 when they hold a byte 0xff or 0xfe
 * (the wire protocol's terminators) or the output would pass 1 MiB (nothing added). */
static inline int etmem_answer_write(struct etmem_answer *answer, const char *text, size_t len)
{
    return etmem_host ? etmem_host->answer_write(answer, text, len) : -1;
}

/* etmem_answer_write of printf-formatted text (at most 4095 bytes a call, else -1). */
static inline __attribute__((format(printf, 2, 3)))
int etmem_answer_printf(struct etmem_answer *answer, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -1;
    return etmem_answer_write(answer, buf, (size_t)n);
}

/* A line in etmemd's log (syslog, and stderr in the foreground), at an ETMEM_LOG_* level,
 * printf-formatted; the engine's name is added by the caller if wanted. */
static inline __attribute__((format(printf, 2, 3)))
void etmem_log(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (!etmem_host)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    etmem_host->log(level, buf);
}

#ifdef __cplusplus
}
#endif

#endif /* ETMEM_ENGINE_H */
