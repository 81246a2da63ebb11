/*  =========================================================================
    bly_log - logging and assertions

    One event per line, prefixed with the level and the actor name of the
    calling thread. The level is checked before formatting. Assertions are
    never compiled out.
    ========================================================================= */

#ifndef BLY_LOG_H_INCLUDED
#define BLY_LOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLY_MUST_USE __attribute__((warn_unused_result))
#define BLY_PRINTF(a, b) __attribute__((format(printf, a, b)))

typedef enum {
    BLY_LOG_ERROR = 0,
    BLY_LOG_WARN = 1,
    BLY_LOG_NOTICE = 2,
    BLY_LOG_INFO = 3,
    BLY_LOG_DEBUG = 4,
} bly_log_level_t;

//  Set the process-wide level; messages above it are dropped unformatted.
void bly_log_set_level(bly_log_level_t level);

//  Parse "error", "warn", "notice", "info" or "debug". Returns 0 or -1.
BLY_MUST_USE int bly_log_level_parse(const char *text, bly_log_level_t *level);

//  Name the calling thread's actor; it prefixes every line the thread logs.
//  The string is copied (truncated to BLY_ACTOR_NAME_MAX - 1).
void bly_log_set_actor(const char *name);

//  The calling thread's actor name ("main" when none was set).
const char *bly_log_actor(void);

//  True when a message at this level would be written.
bool bly_log_enabled(bly_log_level_t level);

//  Write one line at this level. Prefer the macros below.
void bly_log_write(bly_log_level_t level, const char *format, ...) BLY_PRINTF(2, 3);

#define bly_log_error(...) bly_log_write(BLY_LOG_ERROR, __VA_ARGS__)
#define bly_log_warn(...) bly_log_write(BLY_LOG_WARN, __VA_ARGS__)
#define bly_log_notice(...) bly_log_write(BLY_LOG_NOTICE, __VA_ARGS__)
#define bly_log_info(...) bly_log_write(BLY_LOG_INFO, __VA_ARGS__)
#define bly_log_debug(...)                                                                         \
    do {                                                                                           \
        if (bly_log_enabled(BLY_LOG_DEBUG))                                                        \
            bly_log_write(BLY_LOG_DEBUG, __VA_ARGS__);                                             \
    } while (0)

//  Rate limiter for repeated errors: allows `burst` lines, then one per
//  `interval_ms`, counting what it suppressed. Plain data, zero-initialise.
typedef struct {
    int64_t window_start_ms;  //  Start of the current window.
    uint32_t in_window;       //  Lines allowed in this window.
    uint32_t suppressed;      //  Lines dropped since the last allowed one.
} bly_ratelimit_t;

//  True when a line may be logged now; `now_ms` comes from the caller.
bool bly_ratelimit_allow(bly_ratelimit_t *self, int64_t now_ms, uint32_t burst,
                         int64_t interval_ms);

//  Format a reason into a caller's error buffer (`error` may be NULL or
//  `error_size` 0: then nothing is written). Truncates, always terminates.
void bly_error_set(char *error, size_t error_size, const char *format, ...) BLY_PRINTF(3, 4);

//  Called by bly_assert on failure: logs and aborts.
_Noreturn void bly_assert_fail(const char *expr, const char *file, int line);

//  Never compiled out. One condition per assert, no side effects.
#define bly_assert(expr) ((expr) ? (void) 0 : bly_assert_fail(#expr, __FILE__, __LINE__))

//  "Can't happen" branches: an assert in debug and test builds (BLY_TESTING
//  or no NDEBUG), the plain condition in release builds so it is handled.
#if defined(BLY_TESTING) || !defined(NDEBUG)
#define BLY_NEVER(x) ((x) ? (bly_assert_fail("never: " #x, __FILE__, __LINE__), 1) : 0)
#else
#define BLY_NEVER(x) (x)
#endif

#endif
