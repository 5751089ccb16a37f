/*
 * The shape of a plug-in built for upstream etmem, not for <etmem/engine.h>: a struct
 * engine_ops of nine function pointers and no etmem_host. etmemd must refuse it, saying
 * that it needs porting.
 */
struct engine_ops {
    void *callbacks[9];
};

static int start_task(void)
{
    return 0;
}

struct engine_ops my_engine_ops = {{0, 0, 0, 0, (void *)start_task}};
