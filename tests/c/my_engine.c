/*
 * A .so plug-in engine in the manner of upstream's test plug-in (my_engine.c), ported to
 * <etmem/engine.h>: every one of the nine callbacks appends a line to the file named by
 * the engine's private key `log`, so the test can check which were called, in which
 * order, with what. As upstream's, it wants engine_private_key=1024 and
 * task_private_key=2048. Its command handler answers with the task's processes and how
 * many VMAs libetmemd_scan.so finds in each; the command `fail` fails.
 *
 * Other symbols of the same library: start_null_ops (no callback at all: a project holding
 * it cannot start), quiet_ops (only start_task: no command handler), and wrong_abi_ops
 * (made for another version of the interface); not_ops is a function.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <etmem/engine.h>
#include <etmem/scan.h>

/* Which build of the plug-in this is (the tests build a second, "other", to put in
 * place of the first). */
#ifndef FLAVOUR
#define FLAVOUR "good"
#endif

struct my_engine {
    char *log;
    char *key;
};

static void note(struct etmem_engine *eng, const char *fmt, const char *a, const char *b)
{
    struct my_engine *me = etmem_engine_data(eng);
    FILE *f;

    if (me == NULL || (f = fopen(me->log, "a")) == NULL)
        return;
    fprintf(f, fmt, a, b);
    fputc('\n', f);
    fclose(f);
}

static char *copy(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

static int fill_eng_params(const struct etmem_config *config, struct etmem_engine *eng)
{
    struct my_engine *me = calloc(1, sizeof(*me));
    char keys[256] = "";
    size_t i;

    if (me == NULL)
        return -1;
    me->log = copy(etmem_config_get(config, "log"));
    me->key = copy(etmem_config_get(config, "engine_private_key"));
    if (me->log == NULL || etmem_engine_set_data(eng, me) != 0) {
        free(me);
        return -1;
    }
    for (i = 0; etmem_config_key(config, i) != NULL; i++) {
        strncat(keys, " ", sizeof(keys) - strlen(keys) - 1);
        strncat(keys, etmem_config_key(config, i), sizeof(keys) - strlen(keys) - 1);
    }
    note(eng, "fill_eng_params %s keys%s", etmem_engine_name(eng), keys);
    note(eng, "flavour %s%s", FLAVOUR, "");
    note(eng, "project %s loop %s", etmem_project_get(eng, "name"),
         etmem_project_get(eng, "loop"));
    note(eng, "engine_private_key %s%s", me->key ? me->key : "(none)", "");
    return me->key != NULL && strcmp(me->key, "1024") == 0 ? 0 : -1;
}

static void clear_eng_params(struct etmem_engine *eng)
{
    struct my_engine *me = etmem_engine_data(eng);

    note(eng, "clear_eng_params %s%s", etmem_engine_name(eng), "");
    if (me != NULL) {
        free(me->log);
        free(me->key);
        free(me);
        etmem_engine_set_data(eng, NULL);
    }
}

static int fill_task_params(const struct etmem_config *config, struct etmem_task *tk)
{
    char *key = copy(etmem_config_get(config, "task_private_key"));
    struct etmem_engine *eng = etmem_task_engine(tk);

    note(eng, "fill_task_params %s %s", etmem_task_name(tk), key ? key : "(none)");
    note(eng, "task type %s value %s", etmem_task_type(tk), etmem_task_value(tk));
    etmem_task_set_data(tk, key);
    return key != NULL && strcmp(key, "2048") == 0 ? 0 : -1;
}

static void clear_task_params(struct etmem_task *tk)
{
    note(etmem_task_engine(tk), "clear_task_params %s%s", etmem_task_name(tk), "");
    free(etmem_task_data(tk));
    etmem_task_set_data(tk, NULL);
}

static int start_task(struct etmem_engine *eng, struct etmem_task *tk)
{
    note(eng, "start_task %s%s", etmem_task_name(tk), "");
    return 0;
}

static void stop_task(struct etmem_engine *eng, struct etmem_task *tk)
{
    note(eng, "stop_task %s%s", etmem_task_name(tk), "");
}

static int alloc_pid_params(struct etmem_engine *eng, struct etmem_task_pid *tpid)
{
    char pid[16];

    snprintf(pid, sizeof(pid), "%u", etmem_pid_value(tpid));
    note(eng, "alloc_pid_params %s %s", etmem_task_name(etmem_pid_task(tpid)), pid);
    return etmem_pid_set_data(tpid, strdup(pid));
}

static void free_pid_params(struct etmem_engine *eng, struct etmem_task_pid *tpid)
{
    char *pid = etmem_pid_data(tpid);

    note(eng, "free_pid_params %s %s", etmem_task_name(etmem_pid_task(tpid)), pid);
    free(pid);
}

static int eng_mgt_func(struct etmem_engine *eng, struct etmem_task *tk, const char *cmd,
                        struct etmem_answer *answer)
{
    unsigned int pids[8];
    long n, i;

    note(eng, "eng_mgt_func %s %s", cmd, tk ? etmem_task_name(tk) : "-");
    etmem_answer_printf(answer, "msg to client\n");
    if (strcmp(cmd, "fail") == 0) {
        etmem_answer_printf(answer, "cannot %s\n", cmd);
        return 1;
    }
    if (tk == NULL)
        return 0;
    n = etmem_task_pids(tk, pids, 8);
    for (i = 0; i < n && i < 8; i++) {
        char pid[16];
        struct vmas *vmas;

        snprintf(pid, sizeof(pid), "%u", pids[i]);
        vmas = etmemd_get_vmas(pid, NULL, 0, true);
        etmem_answer_printf(answer, "pid %s vmas %lu\n", pid,
                            vmas ? (unsigned long)vmas->vma_cnt : 0UL);
        etmemd_free_vmas(vmas);
    }
    /* The wire protocol's terminator bytes are refused. */
    if (etmem_answer_write(answer, "\xff", 1) != -1)
        etmem_answer_printf(answer, "0xff was accepted\n");
    return 0;
}

struct etmem_engine_ops my_engine_ops = {
    ETMEM_ENGINE_OPS_INIT,
    .fill_eng_params = fill_eng_params,
    .clear_eng_params = clear_eng_params,
    .fill_task_params = fill_task_params,
    .clear_task_params = clear_task_params,
    .start_task = start_task,
    .stop_task = stop_task,
    .alloc_pid_params = alloc_pid_params,
    .free_pid_params = free_pid_params,
    .eng_mgt_func = eng_mgt_func,
};

struct etmem_engine_ops start_null_ops = {
    ETMEM_ENGINE_OPS_INIT,
};

static int quiet_start(struct etmem_engine *eng, struct etmem_task *tk)
{
    (void)eng;
    (void)tk;
    return 0;
}

struct etmem_engine_ops quiet_ops = {
    ETMEM_ENGINE_OPS_INIT,
    .start_task = quiet_start,
};

struct etmem_engine_ops wrong_abi_ops = {
    .abi_version = ETMEM_ENGINE_ABI_VERSION + 1,
    .start_task = quiet_start,
};

int not_ops(void)
{
    return 0;
}
