package dev.reauth

import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject
import java.io.IOException
import java.nio.file.Files
import java.nio.file.Path
import kotlin.system.exitProcess

/**
 * Replays the conformance transcripts of `tests/vectors` through the Kotlin bindings.
 * `bindings/kotlin/replay FILE…` runs [main]: exit 0 every step matches, 1 a mismatch
 * (expected versus actual per step), 2 a file that cannot be read or is not a transcript
 * — like the Rust and Python replayers. Transcripts hold test data only: they are the one
 * place where commands are written with their token text.
 */
object Replay {
    class TranscriptException(message: String) : Exception(message)

    data class Mismatch(val step: Int, val at: Long, val input: String, val expected: JSONObject, val actual: JSONObject) {
        override fun toString(): String = buildString {
            append("  step $step (at $at, $input):\n")
            for (key in listOf("commands", "error", "id", "timeout", "causes")) {
                val e = expected.opt(key)?.toString()
                val a = actual.opt(key)?.toString()
                if (e != a) {
                    append("    $key: expected $e\n")
                    append("    ${" ".repeat(key.length)}  actual   $a\n")
                }
            }
        }
    }

    private const val I64_MAX = Long.MAX_VALUE

    /** A JSON number as a Long; values past 2^63 − 1 (a transcript's u64::MAX) are past
     *  the end of the clock either way, and cross as Long.MAX_VALUE. */
    private fun long(o: JSONObject, key: String): Long {
        val v = o.get(key)
        return when (v) {
            is Int -> v.toLong()
            is Long -> v
            is java.math.BigInteger -> if (v > java.math.BigInteger.valueOf(I64_MAX)) I64_MAX else v.toLong()
            is Number -> v.toLong()
            else -> throw TranscriptException("$key is not a number")
        }
    }

    private fun optLong(o: JSONObject, key: String): Long? = if (!o.has(key) || o.isNull(key)) null else long(o, key)

    fun config(raw: JSONObject?): Config {
        if (raw == null) return Config()
        val known = setOf(
            "refresh_statuses", "expiry_skew_ms", "min_token_age_ms", "max_replays_per_request", "refresh_window",
            "initial_backoff_ms", "max_backoff_ms", "max_retries", "refresh_timeout_ms", "max_pending", "max_wait_ms",
        )
        val unknown = raw.keySet() - known
        if (unknown.isNotEmpty()) throw TranscriptException("unknown config field(s): ${unknown.sorted()}")
        val d = Config()
        val window = raw.optJSONObject("refresh_window")
        return Config(
            refreshStatuses = raw.optJSONArray("refresh_statuses")?.let { a -> (0 until a.length()).map { a.getInt(it) } } ?: d.refreshStatuses,
            expirySkewMs = optLong(raw, "expiry_skew_ms") ?: d.expirySkewMs,
            minTokenAgeMs = optLong(raw, "min_token_age_ms") ?: d.minTokenAgeMs,
            maxReplaysPerRequest = optLong(raw, "max_replays_per_request")?.toInt() ?: d.maxReplaysPerRequest,
            refreshWindowMaxRefreshes = window?.let { optLong(it, "max_refreshes")?.toInt() } ?: d.refreshWindowMaxRefreshes,
            refreshWindowMs = window?.let { optLong(it, "window_ms") } ?: d.refreshWindowMs,
            initialBackoffMs = optLong(raw, "initial_backoff_ms") ?: d.initialBackoffMs,
            maxBackoffMs = optLong(raw, "max_backoff_ms") ?: d.maxBackoffMs,
            maxRetries = optLong(raw, "max_retries")?.toInt() ?: d.maxRetries,
            refreshTimeoutMs = optLong(raw, "refresh_timeout_ms") ?: d.refreshTimeoutMs,
            maxPending = optLong(raw, "max_pending")?.toInt() ?: d.maxPending,
            maxWaitMs = optLong(raw, "max_wait_ms") ?: d.maxWaitMs,
        )
    }

    private fun credentials(raw: JSONObject): Credentials = Credentials(
        raw.getString("access_token"),
        if (raw.has("refresh_token") && !raw.isNull("refresh_token")) raw.getString("refresh_token") else null,
        optLong(raw, "expires_in_ms"),
    )

    private fun failure(raw: Any): RefreshFailure = when {
        raw == "rejected" -> RefreshFailure.Rejected
        raw is JSONObject && raw.keySet() == setOf("transient") -> {
            val t = raw.optJSONObject("transient")
            RefreshFailure.Transient(t?.let { optLong(it, "retry_after_ms") })
        }
        else -> throw TranscriptException("unknown refresh failure $raw")
    }

    /** Applies one input; returns the id (for submit) and the batch. */
    private fun apply(core: Coordinator, now: Long, input: JSONObject): Pair<Long?, List<Command>> =
        when (val type = input.optString("type")) {
            "login" -> null to core.login(now, credentials(input.getJSONObject("credentials")))
            "submit" -> {
                val o = input.optJSONObject("options") ?: JSONObject()
                val s = core.submit(now, RequestOptions(o.optBoolean("replayable", true), o.optBoolean("refresh", true), optLong(o, "route")))
                s.id to s.commands
            }
            "response" -> null to core.handleResponse(now, long(input, "id"), long(input, "status").toInt())
            "transport_error" -> null to core.handleTransportError(now, long(input, "id"))
            "refresh_succeeded" -> null to core.handleRefreshSucceeded(now, long(input, "attempt"), credentials(input.getJSONObject("credentials")))
            "refresh_failed" -> null to core.handleRefreshFailed(now, long(input, "attempt"), failure(input.get("failure")))
            "timeout" -> null to core.handleTimeout(now)
            "cancel" -> null to core.cancel(now, long(input, "id"))
            "force_refresh" -> null to core.forceRefresh(now)
            "logout" -> null to core.logout(now)
            "begin_restore" -> null to core.beginRestore(now)
            "restore_failed" -> null to core.restoreFailed(now)
            else -> throw TranscriptException("unknown input type '$type'")
        }

    /** A command as a transcript writes it — with its token text (test data only). */
    fun record(c: Command): JSONObject = when (c) {
        is Command.Send -> JSONObject().put("type", "send").put("id", c.id).put("access_token", c.accessToken.expose()).put("generation", c.generation)
        is Command.Replay -> JSONObject().put("type", "replay").put("id", c.id).put("access_token", c.accessToken.expose()).put("generation", c.generation)
        is Command.Refresh -> JSONObject().put("type", "refresh").put("attempt", c.attempt).put("refresh_token", c.refreshToken.expose())
        is Command.StoreCredentials -> JSONObject().put("type", "store_credentials").put("generation", c.generation)
            .put("access_token", c.accessToken.expose()).put("refresh_token", c.refreshToken?.expose() ?: JSONObject.NULL)
            .put("expires_in_ms", c.expiresInMs ?: JSONObject.NULL).put("expires_at", c.expiresAt ?: JSONObject.NULL)
        is Command.Complete -> JSONObject().put("type", "complete").put("id", c.id)
        is Command.Fail -> JSONObject().put("type", "fail").put("id", c.id).put("reason", c.reason.name.lowercase())
        is Command.Logout -> JSONObject().put("type", "logout").put("reason", c.reason.name.lowercase())
    }

    /** A transcript's command with its optional fields filled in (as the Rust reader does). */
    private fun withDefaults(o: JSONObject): JSONObject {
        if (o.optString("type") == "store_credentials") {
            for (k in listOf("expires_in_ms", "expires_at")) if (!o.has(k)) o.put(k, JSONObject.NULL)
        }
        return o
    }

    fun errorKind(e: ReauthException): String = e.javaClass.simpleName.replace(Regex("([a-z])([A-Z])"), "$1_$2").lowercase()

    /** Equality of two JSON values as data (numbers by value, objects by keys). */
    private fun same(a: Any?, b: Any?): Boolean = when {
        a is JSONObject && b is JSONObject -> a.similar(b)
        a is JSONArray && b is JSONArray -> a.similar(b)
        a is Number && b is Number -> a.toLong() == b.toLong()
        else -> a == b
    }

    /** The causes the core noted for the last input (its flight recorder keeps them). */
    private fun causes(core: Coordinator): JSONArray = JSONArray(core.lastCauses())

    /** Replays one transcript from a new coordinator — or, for a flight recording that
     *  starts mid-session, from its `start` state — and returns the mismatches. The
     *  causes a recording gives for its commands are checked against the core's. */
    fun replay(transcript: JSONObject): List<Mismatch> {
        val core = try {
            val config = config(transcript.optJSONObject("config"))
            val start = transcript.optJSONObject("start")
            if (start == null) Coordinator(config) else Coordinator.resume(config, start.toString())
        } catch (e: ReauthException) {
            throw TranscriptException(e.message ?: "invalid config")
        }
        core.use {
            val mismatches = mutableListOf<Mismatch>()
            val steps = transcript.getJSONArray("steps")
            val withCauses = (0 until steps.length()).any { steps.getJSONObject(it).has("causes") }
            // Only the last input's causes are read at each step.
            if (withCauses) core.record(1024u)
            for (i in 0 until steps.length()) {
                val step = steps.getJSONObject(i)
                val input = step.getJSONObject("input")
                val at = long(step, "at")
                val (id, commands, error) = try {
                    val (id, commands) = apply(core, at, input)
                    Triple(id, commands, null)
                } catch (e: ReauthException) {
                    Triple(null, emptyList<Command>(), errorKind(e))
                }
                val actual = JSONObject().put("commands", JSONArray(commands.map(::record))).put("error", error ?: JSONObject.NULL)
                val expected = JSONObject()
                    .put("commands", JSONArray((step.optJSONArray("expect") ?: JSONArray()).map { withDefaults(it as JSONObject) }))
                    .put("error", if (step.has("error")) step.get("error") else JSONObject.NULL)
                if (step.has("id")) {
                    expected.put("id", step.get("id"))
                    actual.put("id", id ?: JSONObject.NULL)
                }
                if (step.has("timeout")) {
                    expected.put("timeout", step.get("timeout"))
                    actual.put("timeout", core.pollTimeout() ?: JSONObject.NULL)
                }
                if (step.has("causes")) {
                    expected.put("causes", step.getJSONArray("causes"))
                    actual.put("causes", causes(core))
                }
                val differ = expected.keySet().any { !same(expected.opt(it), actual.opt(it)) }
                if (differ) mismatches += Mismatch(i + 1, at, input.optString("type", "?"), expected, actual)
            }
            return mismatches
        }
    }
}

fun main(args: Array<String>) {
    if (args.isEmpty() || args.any { it == "-h" || it == "--help" }) {
        System.err.println("usage: replay TRANSCRIPT.json [TRANSCRIPT.json ...]")
        exitProcess(2)
    }
    var mismatched = false
    for (path in args) {
        val transcript = try {
            JSONObject(Files.readString(Path.of(path)))
        } catch (e: IOException) {
            System.err.println("$path: cannot read: $e")
            exitProcess(2)
        } catch (e: JSONException) {
            System.err.println("$path: not a valid transcript: ${e.message}")
            exitProcess(2)
        }
        val mismatches = try {
            Replay.replay(transcript)
        } catch (e: Replay.TranscriptException) {
            System.err.println("$path: not a valid transcript: ${e.message}")
            exitProcess(2)
        } catch (e: JSONException) {
            System.err.println("$path: not a valid transcript: ${e.message}")
            exitProcess(2)
        }
        val steps = transcript.getJSONArray("steps").length()
        if (mismatches.isEmpty()) {
            println("ok       $path ($steps steps)")
        } else {
            mismatched = true
            println("MISMATCH $path: ${mismatches.size} of $steps steps differ")
            mismatches.forEach { print(it) }
        }
    }
    println("${args.size} transcript(s): ${if (mismatched) "some differ" else "all match"}")
    exitProcess(if (mismatched) 1 else 0)
}
