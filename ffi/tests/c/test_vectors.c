/*
 * Replays every conformance transcript (the JSON files under tests/vectors, given as arguments)
 * through the C ABI and requires identical command batches, error statuses, ids and
 * timers. JSON is read with cJSON.
 */
#include <cjson/cJSON.h>
#include <errno.h>

#include "common.h"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    CHECK(text != NULL);
    CHECK(fread(text, 1, (size_t)size, f) == (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

/* A JSON number as uint64_t. cJSON keeps numbers as doubles: exact up to 2^53, and
 * transcripts use larger values only for u64::MAX (which the double rounds to 2^64, out
 * of uint64_t's range: converting it would be undefined), so saturate. */
static uint64_t u64_of(const cJSON *v) {
    CHECK(cJSON_IsNumber(v));
    if (v->valuedouble <= 0) return 0;
    if (v->valuedouble >= 18446744073709551615.0) return UINT64_MAX;
    return (uint64_t)v->valuedouble;
}

static uint64_t num(const cJSON *obj, const char *key) {
    return u64_of(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static const char *str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static reauth_credentials json_creds(const cJSON *c) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "expires_in_ms");
    reauth_credentials out = creds(str(c, "access_token"), str(c, "refresh_token"), -1);
    if (cJSON_IsNumber(e)) {
        out.has_expires_in = true;
        out.expires_in_ms = u64_of(e);
    }
    return out;
}

static const char *const FAIL_NAMES[] = {
    "", "not_logged_in", "logged_out", "refresh_rejected", "refresh_unavailable",
    "excessive_refresh", "unauthorized", "queue_full", "wait_timeout", "transport"};
static const char *const LOGOUT_NAMES[] = {
    "", "requested", "refresh_rejected", "no_refresh_token", "excessive_refresh"};

static reauth_status status_of(const char *kind) {
    static const struct { const char *name; reauth_status status; } table[] = {
        {"unknown_request", REAUTH_STATUS_UNKNOWN_REQUEST},
        {"not_in_flight", REAUTH_STATUS_NOT_IN_FLIGHT},
        {"unknown_attempt", REAUTH_STATUS_UNKNOWN_ATTEMPT},
        {"invalid_credentials", REAUTH_STATUS_INVALID_CREDENTIALS},
        {"invalid_status", REAUTH_STATUS_INVALID_STATUS},
        {"invalid_time", REAUTH_STATUS_INVALID_TIME},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, kind) == 0) return table[i].status;
    fprintf(stderr, "unknown error kind %s\n", kind);
    exit(2);
}

/* Renders a command the way the transcripts spell it, for messages. */
static void describe(const reauth_command *c, char *buf, size_t len) {
    switch (c->kind) {
    case REAUTH_COMMAND_SEND:
    case REAUTH_COMMAND_REPLAY:
        snprintf(buf, len, "%s id=%llu gen=%llu token=%.*s",
                 c->kind == REAUTH_COMMAND_SEND ? "send" : "replay",
                 (unsigned long long)c->request_id, (unsigned long long)c->generation,
                 (int)c->token_len, (const char *)c->token);
        break;
    case REAUTH_COMMAND_REFRESH:
        snprintf(buf, len, "refresh attempt=%llu token=%.*s", (unsigned long long)c->attempt,
                 (int)c->token_len, (const char *)c->token);
        break;
    case REAUTH_COMMAND_STORE_CREDENTIALS:
        snprintf(buf, len, "store_credentials gen=%llu access=%.*s refresh=%.*s",
                 (unsigned long long)c->generation, (int)c->token_len, (const char *)c->token,
                 (int)c->refresh_token_len, c->refresh_token ? (const char *)c->refresh_token : "");
        break;
    case REAUTH_COMMAND_COMPLETE:
        snprintf(buf, len, "complete id=%llu", (unsigned long long)c->request_id);
        break;
    case REAUTH_COMMAND_FAIL:
        snprintf(buf, len, "fail id=%llu reason=%s", (unsigned long long)c->request_id,
                 FAIL_NAMES[c->fail_reason]);
        break;
    case REAUTH_COMMAND_LOGOUT:
        snprintf(buf, len, "logout reason=%s", LOGOUT_NAMES[c->logout_reason]);
        break;
    }
}

/* Whether actual command `c` is the expected JSON command `e`. */
static int matches(const reauth_command *c, const cJSON *e) {
    const char *type = str(e, "type");
    if (strcmp(type, "send") == 0 || strcmp(type, "replay") == 0) {
        reauth_command_kind kind = type[0] == 's' ? REAUTH_COMMAND_SEND : REAUTH_COMMAND_REPLAY;
        return c->kind == kind && c->request_id == num(e, "id") &&
               c->generation == num(e, "generation") &&
               token_is(c->token, c->token_len, str(e, "access_token"));
    }
    if (strcmp(type, "refresh") == 0)
        return c->kind == REAUTH_COMMAND_REFRESH && c->attempt == num(e, "attempt") &&
               token_is(c->token, c->token_len, str(e, "refresh_token"));
    if (strcmp(type, "store_credentials") == 0) {
        const char *refresh = str(e, "refresh_token");
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(e, "expires_in_ms");
        int exp_ok = cJSON_IsNumber(exp) ? (c->has_expires_in && c->expires_in_ms == u64_of(exp))
                                         : !c->has_expires_in;
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(e, "expires_at");
        int at_ok = cJSON_IsNumber(at) ? (c->has_expires_at && c->expires_at == u64_of(at))
                                       : !c->has_expires_at;
        int refresh_ok = refresh ? token_is(c->refresh_token, c->refresh_token_len, refresh)
                                 : c->refresh_token == NULL;
        return c->kind == REAUTH_COMMAND_STORE_CREDENTIALS && c->generation == num(e, "generation") &&
               token_is(c->token, c->token_len, str(e, "access_token")) && refresh_ok && exp_ok &&
               at_ok;
    }
    if (strcmp(type, "complete") == 0)
        return c->kind == REAUTH_COMMAND_COMPLETE && c->request_id == num(e, "id");
    if (strcmp(type, "fail") == 0)
        return c->kind == REAUTH_COMMAND_FAIL && c->request_id == num(e, "id") &&
               strcmp(FAIL_NAMES[c->fail_reason], str(e, "reason")) == 0;
    if (strcmp(type, "logout") == 0)
        return c->kind == REAUTH_COMMAND_LOGOUT && strcmp(LOGOUT_NAMES[c->logout_reason], str(e, "reason")) == 0;
    return 0;
}

/* Applies one step's input. */
static reauth_status apply(reauth_coordinator *co, uint64_t at, const cJSON *input, uint64_t *id,
                           reauth_commands *out) {
    const char *type = str(input, "type");
    if (strcmp(type, "login") == 0) {
        reauth_credentials c = json_creds(cJSON_GetObjectItemCaseSensitive(input, "credentials"));
        return reauth_login(co, at, &c, out);
    }
    if (strcmp(type, "submit") == 0) {
        const cJSON *options = cJSON_GetObjectItemCaseSensitive(input, "options");
        const cJSON *r = options ? cJSON_GetObjectItemCaseSensitive(options, "replayable") : NULL;
        const cJSON *f = options ? cJSON_GetObjectItemCaseSensitive(options, "refresh") : NULL;
        uint32_t flags = REAUTH_SUBMIT_DEFAULT;
        if (r && !cJSON_IsTrue(r)) flags |= REAUTH_SUBMIT_NOT_REPLAYABLE;
        if (f && !cJSON_IsTrue(f)) flags |= REAUTH_SUBMIT_NO_REFRESH;
        const cJSON *route = options ? cJSON_GetObjectItemCaseSensitive(options, "route") : NULL;
        return reauth_submit(co, at, flags, route ? (uint32_t)u64_of(route) : 0, id, out);
    }
    if (strcmp(type, "response") == 0)
        return reauth_handle_response(co, at, num(input, "id"), (uint32_t)num(input, "status"), out);
    if (strcmp(type, "refresh_succeeded") == 0) {
        reauth_credentials c = json_creds(cJSON_GetObjectItemCaseSensitive(input, "credentials"));
        return reauth_handle_refresh_succeeded(co, at, num(input, "attempt"), &c, out);
    }
    if (strcmp(type, "refresh_failed") == 0) {
        const cJSON *failure = cJSON_GetObjectItemCaseSensitive(input, "failure");
        if (cJSON_IsString(failure)) return reauth_handle_refresh_rejected(co, at, num(input, "attempt"), out);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(failure, "transient");
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive(t, "retry_after_ms");
        bool has = cJSON_IsNumber(ra);
        return reauth_handle_refresh_transient(co, at, num(input, "attempt"), has,
                                               has ? u64_of(ra) : 0, out);
    }
    if (strcmp(type, "timeout") == 0) return reauth_handle_timeout(co, at, out);
    if (strcmp(type, "cancel") == 0) return reauth_cancel(co, at, num(input, "id"), out);
    if (strcmp(type, "force_refresh") == 0) return reauth_force_refresh(co, at, out);
    if (strcmp(type, "logout") == 0) return reauth_logout(co, at, out);
    if (strcmp(type, "transport_error") == 0)
        return reauth_handle_transport_error(co, at, num(input, "id"), out);
    if (strcmp(type, "begin_restore") == 0) return reauth_begin_restore(co, at, out);
    if (strcmp(type, "restore_failed") == 0) return reauth_restore_failed(co, at, out);
    fprintf(stderr, "unknown input type %s\n", type);
    exit(2);
}

static int replay(const char *path) {
    char *text = read_file(path);
    cJSON *t = cJSON_Parse(text);
    if (!t) {
        fprintf(stderr, "%s: invalid JSON near: %.40s\n", path, cJSON_GetErrorPtr());
        exit(2);
    }
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(t, "config");
    char *config_json = config ? cJSON_PrintUnformatted(config) : NULL;
    reauth_coordinator *co = NULL;
    CHECK_OK(reauth_coordinator_new_json(config_json ? config_json : "{}", &co));
    int failures = 0, index = 0;
    reauth_commands *out = reauth_commands_new(); /* one list, reused by every step */
    CHECK(out != NULL);
    const cJSON *step;
    cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(t, "steps")) {
        index++;
        uint64_t at = num(step, "at"), id = 0;
        reauth_status status = apply(co, at, cJSON_GetObjectItemCaseSensitive(step, "input"), &id, out);
        const char *error = str(step, "error");
        reauth_status want = error ? status_of(error) : REAUTH_STATUS_OK;
        if (status != want) {
            fprintf(stderr, "%s step %d: status %d (%s), want %d\n", path, index, (int)status,
                    reauth_status_message(status), (int)want);
            failures++;
        }
        if (status != REAUTH_STATUS_OK && reauth_commands_len(out) != 0) {
            fprintf(stderr, "%s step %d: commands listed on error\n", path, index);
            failures++;
        }
        const cJSON *expect = cJSON_GetObjectItemCaseSensitive(step, "expect");
        size_t want_len = expect ? (size_t)cJSON_GetArraySize(expect) : 0;
        size_t got_len = reauth_commands_len(out);
        int same = got_len == want_len;
        for (size_t i = 0; same && i < got_len; i++) {
            reauth_command c;
            CHECK_OK(reauth_commands_get(out, i, &c));
            same = matches(&c, cJSON_GetArrayItem(expect, (int)i));
        }
        if (!same) {
            failures++;
            fprintf(stderr, "%s step %d: commands differ\n  expected:\n", path, index);
            const cJSON *e;
            cJSON_ArrayForEach(e, expect) {
                char *s = cJSON_PrintUnformatted(e);
                fprintf(stderr, "    %s\n", s);
                free(s);
            }
            fprintf(stderr, "  actual:\n");
            for (size_t i = 0; i < got_len; i++) {
                reauth_command c;
                char buf[512];
                CHECK_OK(reauth_commands_get(out, i, &c));
                describe(&c, buf, sizeof buf);
                fprintf(stderr, "    %s\n", buf);
            }
        }
        const cJSON *want_id = cJSON_GetObjectItemCaseSensitive(step, "id");
        if (cJSON_IsNumber(want_id) && id != u64_of(want_id)) {
            fprintf(stderr, "%s step %d: id %llu, want %.0f\n", path, index, (unsigned long long)id,
                    want_id->valuedouble);
            failures++;
        }
        const cJSON *timeout = cJSON_GetObjectItemCaseSensitive(step, "timeout");
        if (timeout) {
            bool has = false;
            uint64_t when = 0;
            CHECK_OK(reauth_poll_timeout(co, &has, &when));
            int ok = cJSON_IsNull(timeout) ? !has : (has && when == u64_of(timeout));
            if (!ok) {
                fprintf(stderr, "%s step %d: poll_timeout has=%d at=%llu differs\n", path, index, has,
                        (unsigned long long)when);
                failures++;
            }
        }
    }
    reauth_commands_free(out);
    printf("%s %s (%d steps)\n", failures ? "FAIL" : "ok  ", path, index);
    reauth_coordinator_free(co);
    free(config_json);
    cJSON_Delete(t);
    free(text);
    return failures;
}

int main(int argc, char **argv) {
    int failed = 0;
    for (int i = 1; i < argc; i++) failed += replay(argv[i]) ? 1 : 0;
    printf("C ABI transcripts: %d passed, %d failed\n", argc - 1 - failed, failed);
    return failed ? 1 : 0;
}
