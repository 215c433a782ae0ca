/*
 * A real C host: libcurl does the HTTP, reauth decides what to send, when to refresh,
 * and what to replay. 8 threads share one session against the reference token server
 * (short-lived, rotating tokens) while the main thread forces 401 storms; every thread
 * carries out exactly the commands its own calls return.
 *
 *   c-curl http://127.0.0.1:PORT [seconds]
 *
 * Exits 0 when every request got its 200 and the server saw one rotation per refresh
 * cycle.
 */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <reauth.h>

#define THREADS 8
#define MAX_REQUESTS (1 << 22)

static const char *base;
static reauth_coordinator *co;
static atomic_int stop;
static atomic_ullong ok, lost;
static atomic_uchar done[MAX_REQUESTS]; /* request ended: its caller may go on */

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void die(const char *what, reauth_status s) {
    fprintf(stderr, "%s: %s\n", what, reauth_status_message(s));
    exit(1);
}

typedef struct { char *data; size_t len; } buffer;

static size_t collect(char *p, size_t size, size_t n, void *userdata) {
    buffer *b = userdata;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown) return 0;
    b->data = grown;
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET /api/... with a bearer token; returns the status, or 0 on a network error. */
static long api_get(CURL *curl, uint64_t id, const uint8_t *token, size_t token_len) {
    char url[256];
    snprintf(url, sizeof url, "%s/api/items/%llu", base, (unsigned long long)id);
    /* Tokens may be up to 64 KiB: size the header to the token, never truncate it. */
    static const char prefix[] = "Authorization: Bearer ";
    char *auth = malloc(sizeof prefix + token_len);
    if (!auth) {
        fprintf(stderr, "c-curl: out of memory\n");
        exit(1);
    }
    memcpy(auth, prefix, sizeof prefix - 1);
    memcpy(auth + sizeof prefix - 1, token, token_len);
    auth[sizeof prefix - 1 + token_len] = '\0';
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    free(auth);
    if (!headers) {
        fprintf(stderr, "c-curl: out of memory\n");
        exit(1);
    }
    buffer body = {0};
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    long status = 0;
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    } else if (atomic_load(&lost) < 3) {
        fprintf(stderr, "c-curl: request %llu: %s\n", (unsigned long long)id, curl_easy_strerror(rc));
    }
    curl_slist_free_all(headers);
    free(body.data);
    return status;
}

/* POST /oauth/token grant_type=refresh_token; reports the outcome to reauth, whose
 * commands go to `out`. */
static void refresh(CURL *curl, uint64_t attempt, const uint8_t *token, size_t token_len, reauth_commands *out) {
    char url[256];
    snprintf(url, sizeof url, "%s/oauth/token", base);
    char *escaped = curl_easy_escape(curl, (const char *)token, (int)token_len);
    if (!escaped) {
        fprintf(stderr, "c-curl: out of memory\n");
        exit(1);
    }
    static const char prefix[] = "grant_type=refresh_token&refresh_token=";
    size_t escaped_len = strlen(escaped);
    char *form = malloc(sizeof prefix + escaped_len);
    if (!form) {
        fprintf(stderr, "c-curl: out of memory\n");
        exit(1);
    }
    memcpy(form, prefix, sizeof prefix - 1);
    memcpy(form + sizeof prefix - 1, escaped, escaped_len + 1);
    curl_free(escaped);
    buffer body = {0};
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    long status = 0;
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    reauth_status s;
    cJSON *json = body.data ? cJSON_Parse(body.data) : NULL;
    const cJSON *access = cJSON_GetObjectItemCaseSensitive(json, "access_token");
    const cJSON *rotated = cJSON_GetObjectItemCaseSensitive(json, "refresh_token");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(json, "expires_in");
    if (status == 200 && cJSON_IsString(access)) {
        reauth_credentials c = {(const uint8_t *)access->valuestring, strlen(access->valuestring),
                                cJSON_IsString(rotated) ? (const uint8_t *)rotated->valuestring : NULL,
                                cJSON_IsString(rotated) ? strlen(rotated->valuestring) : 0,
                                cJSON_IsNumber(expires), cJSON_IsNumber(expires) ? (uint64_t)(expires->valuedouble * 1000) : 0};
        s = reauth_handle_refresh_succeeded(co, now_ms(), attempt, &c, out);
    } else if ((status == 400 || status == 401) && body.data && strstr(body.data, "invalid_grant")) {
        s = reauth_handle_refresh_rejected(co, now_ms(), attempt, out);
    } else {
        s = reauth_handle_refresh_transient(co, now_ms(), attempt, false, 0, out); /* 5xx, 429, network */
    }
    cJSON_Delete(json);
    free(body.data);
    free(form);
    if (s != REAUTH_STATUS_OK) die("refresh result", s);
}

/* One reusable command list per nesting level of a thread: carrying out a command of
 * the batch in levels[depth] is an input whose batch goes to levels[depth + 1]. */
#define MAX_DEPTH 16
typedef struct { reauth_commands *levels[MAX_DEPTH]; } lists;

static reauth_commands *level(lists *l, int depth) {
    if (depth >= MAX_DEPTH) {
        fprintf(stderr, "c-curl: batches nested too deep\n");
        exit(1);
    }
    if (!l->levels[depth] && !(l->levels[depth] = reauth_commands_new())) {
        fprintf(stderr, "c-curl: out of memory\n");
        exit(1);
    }
    return l->levels[depth];
}

/* Carries out the batch in levels[depth], and everything it leads to, on this thread. */
static void run_batch(CURL *curl, lists *l, int depth) {
    reauth_commands *list = level(l, depth);
    for (size_t i = 0; i < reauth_commands_len(list); i++) {
        reauth_command c;
        reauth_commands_get(list, i, &c);
        reauth_commands *next = NULL;
        reauth_status s = REAUTH_STATUS_OK;
        switch (c.kind) {
        case REAUTH_COMMAND_SEND:
        case REAUTH_COMMAND_REPLAY: {
            long status = api_get(curl, c.request_id, c.token, c.token_len);
            /* No HTTP status (connection reset, DNS, TLS): report it; a FAIL with
             * REAUTH_FAIL_TRANSPORT follows and ends the request. */
            next = level(l, depth + 1);
            s = status ? reauth_handle_response(co, now_ms(), c.request_id, (uint32_t)status, next)
                       : reauth_handle_transport_error(co, now_ms(), c.request_id, next);
            break;
        }
        case REAUTH_COMMAND_REFRESH:
            next = level(l, depth + 1);
            refresh(curl, c.attempt, c.token, c.token_len, next);
            break;
        case REAUTH_COMMAND_COMPLETE:
            atomic_fetch_add(&ok, 1); /* the API answered; here every answer is a 200 */
            if (c.request_id < MAX_REQUESTS) atomic_store(&done[c.request_id], 1);
            break;
        case REAUTH_COMMAND_FAIL:
            atomic_fetch_add(&lost, 1);
            if (c.request_id < MAX_REQUESTS) atomic_store(&done[c.request_id], 1);
            break;
        case REAUTH_COMMAND_LOGOUT:
            atomic_fetch_add(&lost, 1);
            break;
        case REAUTH_COMMAND_STORE_CREDENTIALS: /* a real app writes the keychain here */
            break;
        }
        if (s != REAUTH_STATUS_OK) die("response", s);
        if (next) run_batch(curl, l, depth + 1);
    }
}

static void *worker(void *arg) {
    (void)arg;
    CURL *curl = curl_easy_init();
    lists l = {{0}};
    while (!atomic_load(&stop)) {
        uint64_t id;
        reauth_status s = reauth_submit(co, now_ms(), REAUTH_SUBMIT_DEFAULT, 0, &id, level(&l, 0));
        if (s != REAUTH_STATUS_OK) die("submit", s);
        run_batch(curl, &l, 0);
        /* Like an app thread blocked on its HTTP call: wait until this request ended
         * (another thread may carry out its replay after a refresh). */
        while (id < MAX_REQUESTS && !atomic_load(&done[id])) {
            struct timespec q = {0, 100 * 1000};
            nanosleep(&q, NULL);
        }
    }
    for (int d = 0; d < MAX_DEPTH; d++) reauth_commands_free(l.levels[d]);
    curl_easy_cleanup(curl);
    return NULL;
}

static cJSON *post_json(const char *path, const char *form) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *curl = curl_easy_init();
    buffer body = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    if (form) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    cJSON *json = rc == CURLE_OK && body.data ? cJSON_Parse(body.data) : NULL;
    free(body.data);
    return json;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: c-curl BASE_URL [seconds]\n");
        return 2;
    }
    base = argv[1];
    int seconds = argc > 2 ? atoi(argv[2]) : 3;
    curl_global_init(CURL_GLOBAL_DEFAULT);

    reauth_config cfg;
    reauth_config_default(&cfg);
    cfg.refresh_window_max_refreshes = 100;
    cfg.refresh_window_ms = 10000;
    /* The reference server revokes every token in a storm; a replay that races the next
     * storm is refused again. A second replay (with the token after that storm) keeps
     * such a request from failing Unauthorized: seen once in about 30 000 requests. */
    cfg.max_replays_per_request = 2;
    reauth_status s = reauth_coordinator_new(&cfg, &co);
    if (s != REAUTH_STATUS_OK) die("new", s);

    cJSON *login = post_json("/oauth/token", "grant_type=password&username=demo&password=demo");
    const cJSON *access = cJSON_GetObjectItemCaseSensitive(login, "access_token");
    const cJSON *refresh_token = cJSON_GetObjectItemCaseSensitive(login, "refresh_token");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(login, "expires_in");
    if (!cJSON_IsString(access) || !cJSON_IsString(refresh_token)) {
        fprintf(stderr, "login failed\n");
        return 1;
    }
    reauth_credentials c = {(const uint8_t *)access->valuestring, strlen(access->valuestring),
                            (const uint8_t *)refresh_token->valuestring, strlen(refresh_token->valuestring),
                            cJSON_IsNumber(expires), cJSON_IsNumber(expires) ? (uint64_t)(expires->valuedouble * 1000) : 0};
    reauth_commands *out = reauth_commands_new();
    if (!out) die("commands", REAUTH_STATUS_PANIC);
    if ((s = reauth_login(co, now_ms(), &c, out)) != REAUTH_STATUS_OK) die("login", s);
    reauth_commands_free(out);
    cJSON_Delete(login);

    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, NULL);
    int storms = 0;
    for (int t = 0; t < seconds * 4; t++) {
        struct timespec q = {0, 250 * 1000 * 1000};
        nanosleep(&q, NULL);
        if (t % 4 == 1) { /* a 401 storm every second: the server forgets every access token */
            cJSON_Delete(post_json("/admin/revoke-access", ""));
            storms++;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);

    reauth_stats st;
    reauth_status stats_status = reauth_get_stats(co, &st);
    if (stats_status != REAUTH_STATUS_OK) {
        fprintf(stderr, "c-curl: reauth_get_stats: %s\n", reauth_status_message(stats_status));
        return 1;
    }
    cJSON *server = post_json("/admin/stats", NULL);
    if (server == NULL) {
        fprintf(stderr, "c-curl: the server's statistics are unreadable\n");
        return 1;
    }
    double rotations = cJSON_GetObjectItemCaseSensitive(server, "rotations")->valuedouble;
    double calls = cJSON_GetObjectItemCaseSensitive(server, "refresh_calls")->valuedouble;
    double unauthorized = cJSON_GetObjectItemCaseSensitive(server, "unauthorized")->valuedouble;
    printf("c-curl: %d threads, %llu requests, %llu answered, %llu lost; %d storms, %.0f 401s; "
           "%llu refresh cycles, %.0f refresh calls, %.0f rotations, %llu replays\n",
           THREADS, (unsigned long long)st.submitted, (unsigned long long)atomic_load(&ok),
           (unsigned long long)atomic_load(&lost), storms, unauthorized,
           (unsigned long long)st.refresh_cycles, calls, rotations, (unsigned long long)st.replayed);
    for (int r = 1; r <= 8; r++)
        if (st.failed_by_reason[r]) printf("c-curl: failed with reason %d: %llu\n", r, (unsigned long long)st.failed_by_reason[r]);
    /* Work was done (a run with 0 answered requests proves nothing): at least 100
     * requests per thread, every storm met with a refresh, and every request answered. */
    int pass = atomic_load(&lost) == 0 && atomic_load(&ok) == st.submitted &&
               atomic_load(&ok) >= 100 * THREADS && (storms == 0 || st.refresh_cycles >= 1) &&
               (double)st.refresh_cycles == rotations && (double)st.refresh_attempts == calls;
    cJSON_Delete(server);
    reauth_coordinator_free(co);
    curl_global_cleanup();
    puts(pass ? "c-curl: PASS (every request answered, one rotation per refresh cycle)" : "c-curl: FAIL");
    return pass ? 0 : 1;
}
