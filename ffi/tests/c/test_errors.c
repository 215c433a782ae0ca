/*
 * Bad input through the C ABI: every reauth_status value is produced, each error leaves
 * the coordinator unchanged (same stats, same timer, same behaviour afterwards), and
 * out-parameters are never written on error.
 */
#include "common.h"

/* Declared here, not in the public header: exported only by `--features testing`. */
reauth_status reauth_testing_panic(const reauth_coordinator *coordinator);

#define STATUSES 15 /* REAUTH_STATUS_OK ..= REAUTH_STATUS_INVALID_ARGUMENT */
static int seen[STATUSES];

#define EXPECT(call, want)                                                     \
    do {                                                                       \
        CHECK_STATUS(call, want);                                              \
        seen[want] = 1;                                                        \
    } while (0)

static reauth_stats stats_of(const reauth_coordinator *co) {
    reauth_stats s;
    CHECK_OK(reauth_get_stats(co, &s));
    return s;
}

static void same_stats(const reauth_coordinator *co, const reauth_stats *before) {
    reauth_stats now = stats_of(co);
    CHECK(memcmp(&now, before, sizeof now) == 0);
}

/* The ABI's promises beyond status codes (issue 9, "C ABI"): each is a defect that was
 * found, so each has a check here; ASan and valgrind run it too. */
static void abi_promises(void) {
    reauth_coordinator *co = NULL;
    reauth_commands *o = reauth_commands_new();

    /* A JSON config that is not an object is refused, even where serde could read a
     * struct from an array by field position. */
    EXPECT(reauth_coordinator_new_json("[[403]]", &co), REAUTH_STATUS_INVALID_JSON);
    EXPECT(reauth_coordinator_new_json("{\"refresh_window\": [3, 1000]}", &co), REAUTH_STATUS_INVALID_JSON);
    EXPECT(reauth_coordinator_new_json("42", &co), REAUTH_STATUS_INVALID_JSON);
    /* A key given twice in one object, at any level, is refused: the last one does not
     * silently win. */
    EXPECT(reauth_coordinator_new_json("{\"max_pending\": 0, \"max_pending\": 8}", &co),
           REAUTH_STATUS_INVALID_JSON);
    EXPECT(reauth_coordinator_new_json("{\"refresh_window\": {\"max_refreshes\": 3, \"max_refreshes\": 4}}", &co),
           REAUTH_STATUS_INVALID_JSON);
    CHECK(co == NULL);
    CHECK_OK(reauth_coordinator_new_json("{\"refresh_window\": {\"max_refreshes\": 3}}", &co));

    /* A token length over 64 KiB is refused before a byte is read: the buffer here holds
     * 4 bytes, so reading `len` bytes would be caught by ASan and valgrind. */
    char *small = malloc(4);
    CHECK(small != NULL);
    memcpy(small, "at-1", 4);
    reauth_credentials huge = creds("at-1", NULL, -1);
    huge.access_token = (const uint8_t *)small;
    huge.access_token_len = (size_t)1 << 20;
    EXPECT(reauth_login(co, 1, &huge, o), REAUTH_STATUS_INVALID_CREDENTIALS);
    huge.access_token_len = 4;
    huge.refresh_token = (const uint8_t *)small;
    huge.refresh_token_len = SIZE_MAX;
    EXPECT(reauth_login(co, 1, &huge, o), REAUTH_STATUS_INVALID_CREDENTIALS);
    /* A valid access token with an invalid refresh token: refused (the library's copy of
     * the access token is a wiped secret), nothing changes. */
    reauth_credentials half = creds("at-1", "rt-\xff", -1);
    EXPECT(reauth_login(co, 1, &half, o), REAUTH_STATUS_INVALID_UTF8);
    CHECK(reauth_commands_len(o) == 0);
    free(small);

    /* `has_expires_in` is a byte: any non-zero value means "set", none is undefined. */
    reauth_credentials login = creds("at-1", "rt-1", -1);
    login.has_expires_in = 0xFF;
    login.expires_in_ms = 1000; /* skew min(30 s, 1000 / 2): refresh from 500 */
    reauth_commands *out = reauth_commands_new();
    CHECK_OK(reauth_login(co, 0, &login, out));
    uint64_t id = 0;
    CHECK_OK(reauth_submit(co, 600, REAUTH_SUBMIT_DEFAULT, 0, &id, out));
    CHECK(reauth_commands_len(out) == 1 && count_kind(out, REAUTH_COMMAND_REFRESH) == 1);
    reauth_command cmd;
    CHECK_OK(reauth_commands_get(out, 0, &cmd));
    uint64_t attempt = cmd.attempt;

    /* The refresh succeeds; later results for that finished attempt are OK and empty. */
    reauth_credentials fresh = creds("at-2", "rt-2", 60000);
    CHECK_OK(reauth_handle_refresh_succeeded(co, 700, attempt, &fresh, out));
    CHECK(reauth_commands_len(out) == 2);
    CHECK_OK(reauth_handle_refresh_rejected(co, 710, attempt, out));
    CHECK(reauth_commands_len(out) == 0);
    CHECK_OK(reauth_handle_refresh_transient(co, 720, attempt, true, 5, out));
    CHECK(reauth_commands_len(out) == 0);
    CHECK_OK(reauth_handle_refresh_succeeded(co, 730, attempt, &fresh, out));
    CHECK(reauth_commands_len(out) == 0);
    EXPECT(reauth_handle_refresh_rejected(co, 740, attempt + 1, o), REAUTH_STATUS_UNKNOWN_ATTEMPT);
    EXPECT(reauth_handle_refresh_transient(co, 740, attempt + 1, false, 0, o), REAUTH_STATUS_UNKNOWN_ATTEMPT);

    /* A command list outlives its coordinator: its tokens stay readable until freed. */
    CHECK_OK(reauth_submit(co, 800, REAUTH_SUBMIT_DEFAULT, 0, &id, out));
    reauth_coordinator_free(co);
    CHECK(reauth_commands_len(out) == 1);
    CHECK_OK(reauth_commands_get(out, 0, &cmd));
    CHECK(cmd.kind == REAUTH_COMMAND_SEND && token_is(cmd.token, cmd.token_len, "at-2"));
    reauth_commands_free(out);
    reauth_commands_free(o);
}

int main(void) {
    CHECK(reauth_version() != NULL && strlen(reauth_version()) > 0);
    for (unsigned s = 0; s < STATUSES; s++)
        CHECK(reauth_status_message(s) != NULL && strcmp(reauth_status_message(s), "unknown status") != 0);
    CHECK(strcmp(reauth_status_message(999), "unknown status") == 0);
    reauth_coordinator_free(NULL);
    reauth_commands_free(NULL);
    CHECK(reauth_commands_len(NULL) == 0);
    reauth_config_default(NULL);

    /* Creating coordinators. */
    reauth_config cfg;
    reauth_config_default(&cfg);
    CHECK(cfg.refresh_statuses_len == 1 && cfg.refresh_statuses[0] == 401 && cfg.max_pending == 1024);
    reauth_coordinator *co = (reauth_coordinator *)0x1;
    EXPECT(reauth_coordinator_new(NULL, &co), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_coordinator_new(&cfg, NULL), REAUTH_STATUS_NULL_ARGUMENT);
    reauth_config bad = cfg;
    bad.max_pending = 0;
    EXPECT(reauth_coordinator_new(&bad, &co), REAUTH_STATUS_INVALID_CONFIG);
    bad = cfg;
    bad.refresh_statuses_len = 0; /* allowed (v2): no response starts a refresh */
    EXPECT(reauth_coordinator_new(&bad, &co), REAUTH_STATUS_OK);
    reauth_coordinator_free(co);
    co = (reauth_coordinator *)0x1;
    bad.refresh_statuses_len = 17;
    EXPECT(reauth_coordinator_new(&bad, &co), REAUTH_STATUS_INVALID_CONFIG);
    bad = cfg;
    bad.refresh_statuses[0] = 200;
    EXPECT(reauth_coordinator_new(&bad, &co), REAUTH_STATUS_INVALID_CONFIG);
    bad = cfg;
    bad.max_wait_ms = UINT64_MAX;
    EXPECT(reauth_coordinator_new(&bad, &co), REAUTH_STATUS_INVALID_CONFIG);
    EXPECT(reauth_coordinator_new_json(NULL, &co), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_coordinator_new_json("{", &co), REAUTH_STATUS_INVALID_JSON);
    EXPECT(reauth_coordinator_new_json("{\"bogus\": 1}", &co), REAUTH_STATUS_INVALID_JSON);
    EXPECT(reauth_coordinator_new_json("{\"max_pending\": \"many\"}", &co), REAUTH_STATUS_INVALID_JSON);
    EXPECT(reauth_coordinator_new_json("{\"max_pending\": 0}", &co), REAUTH_STATUS_INVALID_CONFIG);
    EXPECT(reauth_coordinator_new_json("{\"note\": \"\xff\"}", &co), REAUTH_STATUS_INVALID_UTF8);
    CHECK(co == (reauth_coordinator *)0x1); /* never written on error */
    EXPECT(reauth_coordinator_new_json("{\"max_pending\": 8}", &co), REAUTH_STATUS_OK);
    reauth_coordinator_free(co);
    EXPECT(reauth_coordinator_new(&cfg, &co), REAUTH_STATUS_OK);

    /* A busy session: request 1 waits for refresh attempt 1, request 2 is in flight. */
    reauth_commands *out = reauth_commands_new();
    reauth_credentials login = creds("at-1", "rt-1", 3600000);
    CHECK_OK(reauth_login(co, 0, &login, out));
    uint64_t id1 = 0, id2 = 0;
    CHECK_OK(reauth_submit(co, 1, REAUTH_SUBMIT_DEFAULT, 0, &id1, out));
    CHECK_OK(reauth_submit(co, 2, REAUTH_SUBMIT_DEFAULT, 0, &id2, out));
    CHECK_OK(reauth_handle_response(co, 3, id1, 401, out));
    CHECK(count_kind(out, REAUTH_COMMAND_REFRESH) == 1);
    reauth_command cmd;
    CHECK_OK(reauth_commands_get(out, 0, &cmd));
    uint64_t attempt = cmd.attempt;
    reauth_command untouched;
    memset(&untouched, 0xAB, sizeof untouched);
    reauth_command probe = untouched;
    EXPECT(reauth_commands_get(out, 1, &probe), REAUTH_STATUS_INDEX_OUT_OF_RANGE);
    CHECK(memcmp(&probe, &untouched, sizeof probe) == 0);
    EXPECT(reauth_commands_get(NULL, 0, &probe), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_commands_get(out, 0, NULL), REAUTH_STATUS_NULL_ARGUMENT);

    reauth_stats before = stats_of(co);
    bool has_before = false;
    uint64_t at_before = 0;
    CHECK_OK(reauth_poll_timeout(co, &has_before, &at_before));

    reauth_commands *o = reauth_commands_new();
    uint64_t id = 77;
    EXPECT(reauth_submit(NULL, 5, REAUTH_SUBMIT_DEFAULT, 0, &id, o), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_submit(co, 5, REAUTH_SUBMIT_DEFAULT, 0, NULL, o), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_submit(co, 5, REAUTH_SUBMIT_DEFAULT, 0, &id, NULL), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_handle_response(co, 5, 999, 200, o), REAUTH_STATUS_UNKNOWN_REQUEST);
    EXPECT(reauth_cancel(co, 5, 999, o), REAUTH_STATUS_UNKNOWN_REQUEST);
    EXPECT(reauth_submit(co, 5, 4, 0, &id, o), REAUTH_STATUS_INVALID_ARGUMENT);
    EXPECT(reauth_submit(co, 5, UINT32_MAX, 0, &id, o), REAUTH_STATUS_INVALID_ARGUMENT);
    EXPECT(reauth_handle_transport_error(co, 5, 999, o), REAUTH_STATUS_UNKNOWN_REQUEST);
    EXPECT(reauth_handle_transport_error(co, 5, id1, o), REAUTH_STATUS_NOT_IN_FLIGHT);
    EXPECT(reauth_handle_transport_error(NULL, 5, id2, o), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_handle_transport_error(co, UINT64_MAX, id2, o), REAUTH_STATUS_INVALID_TIME);
    EXPECT(reauth_begin_restore(co, 5, NULL), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_restore_failed(co, UINT64_MAX, o), REAUTH_STATUS_INVALID_TIME);
    EXPECT(reauth_handle_response(co, 5, id1, 200, o), REAUTH_STATUS_NOT_IN_FLIGHT);
    EXPECT(reauth_handle_response(co, 5, id2, 99, o), REAUTH_STATUS_INVALID_STATUS);
    EXPECT(reauth_handle_response(co, 5, id2, 600, o), REAUTH_STATUS_INVALID_STATUS);
    EXPECT(reauth_handle_response(co, 5, id2, 70000, o), REAUTH_STATUS_INVALID_STATUS);
    EXPECT(reauth_handle_refresh_rejected(co, 5, attempt + 1, o), REAUTH_STATUS_UNKNOWN_ATTEMPT);
    EXPECT(reauth_handle_refresh_transient(co, 5, 0, false, 0, o), REAUTH_STATUS_UNKNOWN_ATTEMPT);
    reauth_credentials empty = creds("", "rt", -1);
    EXPECT(reauth_handle_refresh_succeeded(co, 5, attempt, &empty, o), REAUTH_STATUS_INVALID_CREDENTIALS);
    reauth_credentials space = creds("at 2", NULL, -1);
    EXPECT(reauth_handle_refresh_succeeded(co, 5, attempt, &space, o), REAUTH_STATUS_INVALID_CREDENTIALS);
    reauth_credentials crlf = creds("at\r\nX-Evil: 1", NULL, -1);
    EXPECT(reauth_login(co, 5, &crlf, o), REAUTH_STATUS_INVALID_CREDENTIALS);
    reauth_credentials utf8 = creds("at-\xff", NULL, -1);
    EXPECT(reauth_handle_refresh_succeeded(co, 5, attempt, &utf8, o), REAUTH_STATUS_INVALID_UTF8);
    reauth_credentials null_access = creds(NULL, "rt", -1);
    EXPECT(reauth_login(co, 5, &null_access, o), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_login(co, 5, NULL, o), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_handle_timeout(co, 5, NULL), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_logout(NULL, 5, o), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_poll_timeout(co, NULL, &at_before), REAUTH_STATUS_NULL_ARGUMENT);
    EXPECT(reauth_get_stats(co, NULL), REAUTH_STATUS_NULL_ARGUMENT);
    /* A clock helper's error value, and the first value past the end of the clock. */
    EXPECT(reauth_handle_timeout(co, UINT64_MAX, o), REAUTH_STATUS_INVALID_TIME);
    EXPECT(reauth_submit(co, REAUTH_MAX_TIMESTAMP + 1, REAUTH_SUBMIT_DEFAULT, 0, &id, o), REAUTH_STATUS_INVALID_TIME);
    EXPECT(reauth_logout(co, UINT64_MAX, o), REAUTH_STATUS_INVALID_TIME);
    EXPECT(reauth_force_refresh(co, UINT64_MAX, o), REAUTH_STATUS_INVALID_TIME);
    EXPECT(reauth_handle_response(co, UINT64_MAX, id2, 200, o), REAUTH_STATUS_INVALID_TIME);
    CHECK(reauth_commands_len(o) == 0 && id == 77);
    same_stats(co, &before);
    bool has_after = false;
    uint64_t at_after = 0;
    CHECK_OK(reauth_poll_timeout(co, &has_after, &at_after));
    CHECK(has_after == has_before && at_after == at_before);

    /* After all that, the session goes on exactly as before: the refresh completes. */
    reauth_credentials fresh = creds("at-2", "rt-2", 3600000);
    CHECK_OK(reauth_handle_refresh_succeeded(co, 6, attempt, &fresh, out));
    CHECK(reauth_commands_len(out) == 2);
    CHECK_OK(reauth_commands_get(out, 0, &cmd));
    CHECK(cmd.kind == REAUTH_COMMAND_STORE_CREDENTIALS && token_is(cmd.token, cmd.token_len, "at-2") &&
          token_is(cmd.refresh_token, cmd.refresh_token_len, "rt-2") && cmd.has_expires_in);
    CHECK_OK(reauth_commands_get(out, 1, &cmd));
    CHECK(cmd.kind == REAUTH_COMMAND_REPLAY && cmd.request_id == id1 && cmd.generation == 2);
    reauth_commands_free(out);

    /* A panic inside the boundary: PANIC once, then POISONED for every call. */
    EXPECT(reauth_testing_panic(co), REAUTH_STATUS_PANIC);
    EXPECT(reauth_submit(co, 7, REAUTH_SUBMIT_DEFAULT, 0, &id, o), REAUTH_STATUS_POISONED);
    EXPECT(reauth_get_stats(co, &before), REAUTH_STATUS_POISONED);
    CHECK(reauth_commands_len(o) == 0);
    reauth_coordinator_free(co);
    reauth_commands_free(o);

    abi_promises();
    seen[REAUTH_STATUS_OK] = 1;
    int missing = 0;
    for (int s = 0; s < STATUSES; s++) {
        if (!seen[s]) {
            fprintf(stderr, "status %d (%s) never produced\n", s, reauth_status_message((unsigned)s));
            missing++;
        }
    }
    CHECK(missing == 0);
    printf("C ABI errors: every one of the %d statuses produced; errors change nothing\n", STATUSES);
    return 0;
}
