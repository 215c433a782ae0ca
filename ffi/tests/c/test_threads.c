/*
 * 8 threads drive one coordinator through repeated 401 storms. A storm revokes the
 * current access token at the (simulated) server; every thread keeps submitting and
 * carries out exactly the commands its own calls return — including replays of other
 * threads' requests released by its refresh. Checks: exactly one refresh per storm, and
 * exactly one terminal command per request.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"

#define THREADS 8
#define STORMS 50
#define MAX_REQUESTS (1 << 22)

static reauth_coordinator *co;
static atomic_ullong revoked_below = 0;  /* generations below this get 401 */
static atomic_ullong latest_generation = 1;
static atomic_ullong tokens_issued = 0;
static atomic_int stop = 0;
static atomic_uchar terminal[MAX_REQUESTS];

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef struct { reauth_command_kind kind; uint64_t id, generation, attempt; } work;

typedef struct { work *items; size_t len, cap; } stack;

static void push_all(stack *s, reauth_commands *list) {
    for (size_t i = 0; i < reauth_commands_len(list); i++) {
        reauth_command c;
        CHECK_OK(reauth_commands_get(list, i, &c));
        if (c.kind == REAUTH_COMMAND_COMPLETE || c.kind == REAUTH_COMMAND_FAIL) {
            CHECK(c.request_id < MAX_REQUESTS);
            unsigned char before = atomic_fetch_add(&terminal[c.request_id], 1);
            CHECK(before == 0); /* exactly one terminal command per request */
            continue;
        }
        CHECK(c.kind != REAUTH_COMMAND_LOGOUT);
        if (c.kind == REAUTH_COMMAND_STORE_CREDENTIALS) {
            atomic_store(&latest_generation, c.generation);
            continue;
        }
        if (s->len == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            s->items = realloc(s->items, s->cap * sizeof *s->items);
            CHECK(s->items != NULL);
        }
        s->items[s->len++] = (work){c.kind, c.request_id, c.generation, c.attempt};
    }
}

/* Carries out everything on the stack, and whatever that produces, until it is empty.
 * `out` is the thread's one list: push_all copies each batch out before the next input. */
static void drain(stack *s, reauth_commands *out) {
    while (s->len > 0) {
        work w = s->items[--s->len];
        if (w.kind == REAUTH_COMMAND_REFRESH) {
            char access[32];
            snprintf(access, sizeof access, "at-%llu", (unsigned long long)atomic_fetch_add(&tokens_issued, 1));
            reauth_credentials fresh = creds(access, "rt-rotated", 3600000);
            CHECK_OK(reauth_handle_refresh_succeeded(co, now_ms(), w.attempt, &fresh, out));
        } else { /* SEND or REPLAY: the server answers by the token's generation */
            uint32_t status = w.generation < atomic_load(&revoked_below) ? 401 : 200;
            CHECK_OK(reauth_handle_response(co, now_ms(), w.id, status, out));
        }
        push_all(s, out);
    }
}

static void *worker(void *arg) {
    (void)arg;
    stack s = {0};
    reauth_commands *out = reauth_commands_new(); /* one list per thread, reused */
    CHECK(out != NULL);
    while (!atomic_load(&stop)) {
        uint64_t id = 0;
        CHECK_OK(reauth_submit(co, now_ms(), REAUTH_SUBMIT_DEFAULT, 0, &id, out));
        push_all(&s, out);
        drain(&s, out);
        struct timespec pause = {0, 50 * 1000}; /* keep the request count moderate */
        nanosleep(&pause, NULL);
    }
    free(s.items);
    reauth_commands_free(out);
    return NULL;
}

int main(void) {
    reauth_config cfg;
    reauth_config_default(&cfg);
    cfg.refresh_window_max_refreshes = 10000;
    cfg.refresh_window_ms = 1000;
    cfg.max_pending = 1000000;
    CHECK_OK(reauth_coordinator_new(&cfg, &co));
    reauth_credentials login = creds("at-login", "rt-login", 3600000);
    reauth_commands *out = reauth_commands_new();
    CHECK_OK(reauth_login(co, now_ms(), &login, out));
    reauth_commands_free(out);

    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, worker, NULL) == 0);

    for (int storm = 1; storm <= STORMS; storm++) {
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
        atomic_store(&revoked_below, atomic_load(&latest_generation) + 1); /* revoke the current token */
        /* The storm must be noticed and answered. Poll gently: under valgrind threads
         * run one at a time, and a busy loop here would starve the workers. */
        uint64_t deadline = now_ms() + 60000;
        reauth_stats s;
        for (;;) {
            CHECK_OK(reauth_get_stats(co, &s));
            if (s.refresh_succeeded >= (uint64_t)storm) break;
            CHECK(now_ms() < deadline);
            struct timespec nap = {0, 1000 * 1000};
            nanosleep(&nap, NULL);
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(threads[i], NULL) == 0);

    reauth_stats s;
    CHECK_OK(reauth_get_stats(co, &s));
    CHECK(s.refresh_cycles == STORMS);
    CHECK(s.refresh_attempts == STORMS);
    CHECK(s.submitted == s.completed + s.failed);
    CHECK(s.failed == s.failed_by_reason[REAUTH_FAIL_UNAUTHORIZED]); /* only a second 401 can fail one */
    for (uint64_t id = 1; id <= s.submitted; id++) CHECK(atomic_load(&terminal[id]) == 1);
    printf("C ABI threads: %d threads, %llu requests, %d storms -> %llu refreshes, %llu replays, "
           "%llu failed, every request ended exactly once\n",
           THREADS, (unsigned long long)s.submitted, STORMS, (unsigned long long)s.refresh_cycles,
           (unsigned long long)s.replayed, (unsigned long long)s.failed);
    reauth_coordinator_free(co);
    return 0;
}
