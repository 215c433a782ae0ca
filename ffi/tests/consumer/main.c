/* The smallest C program using reauth: log in, send one request, complete it. */
#include <stdio.h>
#include <string.h>

#include <reauth.h>

int main(void) {
    reauth_config config;
    reauth_config_default(&config);
    reauth_coordinator *co = NULL;
    if (reauth_coordinator_new(&config, &co) != REAUTH_STATUS_OK) return 1;

    const char *access = "at-1", *refresh = "rt-1";
    reauth_credentials login = {(const uint8_t *)access, strlen(access),
                                (const uint8_t *)refresh, strlen(refresh), false, 0};
    reauth_commands *out = reauth_commands_new(); /* one list, reused by every input */
    if (out == NULL || reauth_login(co, 0, &login, out) != REAUTH_STATUS_OK) return 1;

    uint64_t id = 0;
    if (reauth_submit(co, 1, REAUTH_SUBMIT_DEFAULT, 0, &id, out) != REAUTH_STATUS_OK) return 1;
    reauth_command send;
    if (reauth_commands_get(out, 0, &send) != REAUTH_STATUS_OK || send.kind != REAUTH_COMMAND_SEND) return 1;
    printf("reauth %s: send request %llu with \"Authorization: Bearer %.*s\"\n", reauth_version(),
           (unsigned long long)send.request_id, (int)send.token_len, (const char *)send.token);

    if (reauth_handle_response(co, 2, id, 200, out) != REAUTH_STATUS_OK) return 1;
    reauth_command done;
    int ok = reauth_commands_get(out, 0, &done) == REAUTH_STATUS_OK && done.kind == REAUTH_COMMAND_COMPLETE;
    reauth_commands_free(out);
    reauth_coordinator_free(co);
    return ok ? 0 : 1;
}
