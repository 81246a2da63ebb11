/*  =========================================================================
    bly_log - logging and assertions

    Lines go to stderr as "LEVEL [actor] message". CZMQ's zsys logging is
    used for the system log when enabled by the node; tests read stderr.
    ========================================================================= */

#include "bly_log.h"

#include "bly_limits.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int s_level = BLY_LOG_NOTICE;
static _Thread_local char s_actor[BLY_ACTOR_NAME_MAX];

void
bly_log_set_level(bly_log_level_t level)
{
    bly_assert(level >= BLY_LOG_ERROR);
    bly_assert(level <= BLY_LOG_DEBUG);
    atomic_store(&s_level, (int) level);
}

int
bly_log_level_parse(const char *text, bly_log_level_t *level)
{
    bly_assert(text);
    bly_assert(level);
    static const char *names[] = {"error", "warn", "notice", "info", "debug"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(text, names[i]) == 0) {
            *level = (bly_log_level_t) i;
            return 0;
        }
    }
    return -1;
}

void
bly_log_set_actor(const char *name)
{
    bly_assert(name);
    snprintf(s_actor, sizeof(s_actor), "%s", name);
}

const char *
bly_log_actor(void)
{
    return s_actor[0] ? s_actor : "main";
}

bool
bly_log_enabled(bly_log_level_t level)
{
    return (int) level <= atomic_load(&s_level);
}

void
bly_log_write(bly_log_level_t level, const char *format, ...)
{
    bly_assert(format);
    if (!bly_log_enabled(level))
        return;
    static const char tags[] = {'E', 'W', 'N', 'I', 'D'};
    char line[BLY_LOG_LINE_MAX];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    if (n >= (int) sizeof(line))
        memcpy(line + sizeof(line) - 4, "...", 4);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    //  One fprintf call per line keeps lines from different threads whole.
    fprintf(stderr, "%c %02d:%02d:%02d.%03ld [%s] %s\n", tags[level], tm.tm_hour, tm.tm_min,
            tm.tm_sec, ts.tv_nsec / 1000000, bly_log_actor(), line);
}

bool
bly_ratelimit_allow(bly_ratelimit_t *self, int64_t now_ms, uint32_t burst, int64_t interval_ms)
{
    bly_assert(self);
    bly_assert(burst > 0);
    if (now_ms - self->window_start_ms >= interval_ms || now_ms < self->window_start_ms) {
        self->window_start_ms = now_ms;
        self->in_window = 0;
    }
    if (self->in_window < burst) {
        self->in_window++;
        return true;
    }
    self->suppressed++;
    return false;
}

void
bly_error_set(char *error, size_t error_size, const char *format, ...)
{
    bly_assert(format);
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(error, error_size, format, args);
    va_end(args);
}

void
bly_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "E [%s] assertion failed: %s (%s:%d)\n", bly_log_actor(), expr, file, line);
    fflush(stderr);
    abort();
}
