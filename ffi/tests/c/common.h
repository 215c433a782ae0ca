/* Helpers shared by the C tests of the reauth ABI. */
#ifndef REAUTH_TEST_COMMON_H
#define REAUTH_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reauth.h"

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

#define CHECK_STATUS(call, want)                                                 \
    do {                                                                         \
        reauth_status got_ = (call);                                             \
        if (got_ != (want)) {                                                    \
            fprintf(stderr, "%s:%d: %s returned %d (%s), want %d\n", __FILE__,   \
                    __LINE__, #call, (int)got_, reauth_status_message(got_),     \
                    (int)(want));                                                \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, REAUTH_STATUS_OK)

/* Credentials from NUL-terminated strings; refresh may be NULL; expires < 0: none. */
static inline reauth_credentials creds(const char *access, const char *refresh, long long expires) {
    reauth_credentials c;
    memset(&c, 0, sizeof c);
    c.access_token = (const uint8_t *)access;
    c.access_token_len = access ? strlen(access) : 0;
    c.refresh_token = (const uint8_t *)refresh;
    c.refresh_token_len = refresh ? strlen(refresh) : 0;
    c.has_expires_in = expires >= 0;
    c.expires_in_ms = expires >= 0 ? (uint64_t)expires : 0;
    return c;
}

static inline int token_is(const uint8_t *p, size_t len, const char *want) {
    size_t n = strlen(want);
    return p != NULL && len == n && memcmp(p, want, n) == 0;
}

static inline size_t count_kind(const reauth_commands *list, reauth_command_kind kind) {
    size_t n = 0;
    for (size_t i = 0; i < reauth_commands_len(list); i++) {
        reauth_command c;
        CHECK_OK(reauth_commands_get(list, i, &c));
        if (c.kind == kind) n++;
    }
    return n;
}

#endif
