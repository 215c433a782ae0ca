package dev.reauth

import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.TestFactory
import java.nio.file.Files
import java.util.Base64

/** The host conformance table (tests/host-vectors/, format in its README), read through
 *  the Kotlin bindings: every token-endpoint answer, challenge and route comes out as the
 *  table says. */
class HostVectorsTest {
    private fun load(name: String) =
        JSONObject(Files.readString(VectorsTest.root().resolve("tests/host-vectors/$name")))

    private fun body(case: JSONObject): ByteArray {
        val bytes = if (case.has("body")) case.getString("body").toByteArray(Charsets.UTF_8)
        else Base64.getDecoder().decode(case.getString("body_base64"))
        val size = maxOf(bytes.size, case.optInt("pad_to", 0))
        return bytes.copyOf(size).also { it.fill(' '.code.toByte(), bytes.size, size) }
    }

    private fun observed(answer: TokenAnswer): Map<String, Any?> = when (answer) {
        is TokenAnswer.Succeeded -> mapOf(
            "outcome" to "succeeded",
            "access_token" to answer.credentials.accessToken().expose(),
            "refresh_token" to answer.credentials.refreshToken()?.expose(),
            "expires_in_ms" to answer.credentials.expiresInMs(),
        )
        is TokenAnswer.Rejected -> mapOf("outcome" to "rejected", "error" to answer.error)
        // The binding carries the problem's text; the table's code is checked in Rust.
        is TokenAnswer.Transient -> mapOf(
            "outcome" to "transient",
            "retry_after_ms" to answer.retryAfterMs,
            "rotated_refresh_token" to answer.rotatedRefreshToken?.expose(),
        ).also { assertTrue(answer.problem.isNotEmpty()) }
    }

    private fun expected(expect: JSONObject): Map<String, Any?> =
        expect.keySet().filter { it != "problem" }.associateWith { key ->
            when (val v = expect.get(key)) {
                JSONObject.NULL -> null
                is Number -> v.toLong()
                else -> v
            }
        }

    @TestFactory
    fun `every token-endpoint answer reads as the table says`(): List<DynamicTest> {
        val table = load("token-responses.json")
        val cases = table.getJSONArray("cases")
        assertTrue(cases.length() >= 45, "the table lost cases")
        val sent = Token(table.getString("sent_refresh_token"))
        return (0 until cases.length()).map { i ->
            val case = cases.getJSONObject(i)
            DynamicTest.dynamicTest(case.getString("name")) {
                val answer = readTokenResponse(
                    case.getInt("status"),
                    if (case.has("retry_after")) case.getString("retry_after") else null,
                    body(case),
                    sent,
                    table.getLong("wall_now_ms"),
                )
                assertEquals(expected(case.getJSONObject("expect")), observed(answer))
            }
        }
    }

    private fun strings(values: JSONArray) = (0 until values.length()).map { values.getString(it) }

    @TestFactory
    fun `every challenge reads as the table says`(): List<DynamicTest> {
        val cases = load("challenges.json").getJSONArray("cases")
        return (0 until cases.length()).map { i ->
            val case = cases.getJSONObject(i)
            DynamicTest.dynamicTest(case.getJSONArray("www_authenticate").toString()) {
                val values = strings(case.getJSONArray("www_authenticate"))
                val error = bearerError(values)?.name?.lowercase()
                assertEquals(if (case.isNull("bearer_error")) null else case.getString("bearer_error"), error)
                assertEquals(case.getBoolean("callers_answer"), isCallersAnswer(values))
            }
        }
    }

    @TestFactory
    fun `every default route is named as the table says`(): List<DynamicTest> {
        val cases = load("routes.json").getJSONArray("cases")
        return (0 until cases.length()).map { i ->
            val case = cases.getJSONObject(i)
            DynamicTest.dynamicTest(case.getString("name")) {
                val port = if (case.isNull("port")) null else case.getInt("port")
                val key = defaultRoute(case.getString("method"), case.getString("scheme"), case.getString("host"), port, case.getString("path"))
                assertEquals(case.getLong("route_key"), key)
                assertEquals(routeKey(case.getString("name")), key)
            }
        }
    }
}
