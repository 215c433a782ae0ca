package dev.reauth.okhttp

import dev.reauth.Credentials
import dev.reauth.RefreshFailure
import org.json.JSONException
import org.json.JSONObject
import java.time.ZonedDateTime
import java.time.format.DateTimeFormatter
import java.time.format.DateTimeParseException
import java.util.logging.Logger

/** Token-endpoint answers read as RFC 6749 §5.1/§5.2 say. */
object TokenResponses {
    private val log: Logger = Logger.getLogger("dev.reauth")

    /** 200 with a bearer `access_token` → credentials; 400/401 with an OAuth `error` →
     *  rejected; anything else (5xx, 429, a malformed body) → transient, with the
     *  server's `Retry-After`. */
    fun classify(status: Int, retryAfter: String?, body: String): RefreshOutcome {
        val json = try {
            JSONObject(body)
        } catch (e: JSONException) {
            null
        }
        if (status == 200) {
            val access = json?.opt("access_token") as? String
            if (access == null) return transient(null, "token response without an access_token")
            val type = json.opt("token_type") ?: "bearer"
            if (type !is String || !type.equals("bearer", ignoreCase = true)) {
                return transient(null, "token response of type $type, not bearer")
            }
            val refresh = json.opt("refresh_token")
            if (refresh != null && refresh != JSONObject.NULL && refresh !is String) {
                return transient(null, "token response with a non-string refresh_token")
            }
            val expiresIn = json.opt("expires_in")
            val lifetime = when {
                expiresIn == null || expiresIn == JSONObject.NULL -> null
                expiresIn is Number && expiresIn.toDouble() >= 0 -> (expiresIn.toDouble() * 1000).toLong()
                else -> return transient(null, "token response with an invalid expires_in")
            }
            return RefreshOutcome.Succeeded(Credentials(access, refresh as? String, lifetime))
        }
        val error = json?.opt("error") as? String
        if ((status == 400 || status == 401) && error != null) {
            log.warning("reauth: token endpoint refused the refresh token ($error)")
            return RefreshOutcome.Failed(RefreshFailure.Rejected)
        }
        return transient(retryAfterMs(retryAfter), "token endpoint answered $status")
    }

    /** `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
    fun retryAfterMs(value: String?, nowEpochMs: Long = System.currentTimeMillis()): Long? {
        val v = value?.trim() ?: return null
        v.toLongOrNull()?.let { return if (it >= 0) it * 1000 else null }
        return try {
            maxOf(0L, ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant().toEpochMilli() - nowEpochMs)
        } catch (e: DateTimeParseException) {
            null
        }
    }

    private fun transient(retryAfterMs: Long?, why: String): RefreshOutcome {
        log.warning("reauth: $why; transient")
        return RefreshOutcome.Failed(RefreshFailure.Transient(retryAfterMs))
    }
}
