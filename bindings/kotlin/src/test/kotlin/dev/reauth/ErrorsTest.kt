package dev.reauth

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory

/** Bad input throws a documented [ReauthException] subclass with a clear message and
 *  changes nothing; tokens never show in `toString` or in a message. */
class ErrorsTest {
    private val at = "at-SECRET-0123456789"
    private val rt = "rt-SECRET-9876543210"

    private fun core(): Coordinator {
        val core = Coordinator(Config(maxRetries = 1))
        core.login(0, Credentials(at, rt))
        val sent = core.submit(1)
        core.handleResponse(2, sent.id, 401) // refresh attempt 1 runs; request 1 waits
        core.submit(3) // request 2 waits too
        return core
    }

    private fun snapshot(c: Coordinator) =
        listOf(c.stats(), c.pollTimeout(), c.isLoggedIn(), c.generation(), c.openRequests(), c.waiting())

    private class Bad(val name: String, val kind: Class<out ReauthException>, val message: String, val input: (Coordinator) -> Unit)

    private val bad = listOf(
        Bad("unknown request", ReauthException.UnknownRequest::class.java, "unknown request 99") { it.handleResponse(10, 99, 200) },
        Bad("negative id", ReauthException.UnknownRequest::class.java, "unknown request -3") { it.cancel(10, -3) },
        Bad("waiting request", ReauthException.NotInFlight::class.java, "request 1 is not awaiting a response") { it.handleResponse(10, 1, 200) },
        Bad("status 600", ReauthException.InvalidStatus::class.java, "invalid http status 600") { it.handleResponse(10, 1, 600) },
        Bad("status 70000", ReauthException.InvalidStatus::class.java, "invalid http status 70000") { it.handleResponse(10, 1, 70_000) },
        Bad("unknown attempt", ReauthException.UnknownAttempt::class.java, "unknown refresh attempt 7") {
            it.handleRefreshSucceeded(10, 7, Credentials("at-2"))
        },
        Bad("attempt 0", ReauthException.UnknownAttempt::class.java, "unknown refresh attempt 0") { it.handleRefreshFailed(10, 0, RefreshFailure.Rejected) },
        Bad("empty token", ReauthException.InvalidCredentials::class.java, "access token is empty") {
            it.handleRefreshSucceeded(10, 1, Credentials(""))
        },
        Bad("whitespace token", ReauthException.InvalidCredentials::class.java, "whitespace") { it.login(10, Credentials("a b")) },
        Bad("huge token", ReauthException.InvalidCredentials::class.java, "invalid credentials") { it.login(10, Credentials("x".repeat(70_000))) },
        Bad("time past the end", ReauthException.InvalidTime::class.java, "past the end of the clock") { it.handleTimeout(maxTimestamp() + 1) },
        Bad("negative time", ReauthException.InvalidTime::class.java, "time -1") { it.handleTimeout(-1) },
        Bad("negative retry-after", ReauthException.InvalidArgument::class.java, "retry_after_ms must not be negative") {
            it.handleRefreshFailed(10, 1, RefreshFailure.Transient(-5))
        },
        Bad("route 0", ReauthException.InvalidRoute::class.java, "route keys are in") { it.submit(10, RequestOptions(route = 0)) },
    )

    @TestFactory
    fun `bad input is refused and changes nothing`(): List<DynamicTest> = bad.map { b ->
        DynamicTest.dynamicTest(b.name) {
            core().use { core ->
                val before = snapshot(core)
                val e = assertThrows(b.kind) { b.input(core) }
                assertTrue(b.message in e.message!!, e.message)
                assertFalse("SECRET" in e.message!!)
                assertEquals(before, snapshot(core))
                // ...and it still works: the refresh completes, both requests go out.
                val released = core.handleRefreshSucceeded(20, 1, Credentials("at-2"))
                assertTrue(released[0] is Command.StoreCredentials)
                val ids = released.drop(1).map {
                    when (it) {
                        is Command.Replay -> it.id
                        is Command.Send -> it.id
                        else -> -1L
                    }
                }
                assertEquals(listOf(1L, 2L), ids)
            }
        }
    }

    @Test
    fun `invalid configs are refused with their reason`() {
        val cases = listOf(
            Config(maxPending = 0) to "max_pending must be in",
            Config(refreshStatuses = listOf(200)) to "refresh status 200 is not in 400..=599",
            Config(refreshStatuses = listOf(401, 401)) to "listed twice",
            Config(maxWaitMs = -1) to "max_wait_ms must not be negative, got -1",
        )
        for ((config, message) in cases) {
            val e = assertThrows(ReauthException.InvalidConfig::class.java) { Coordinator(config) }
            assertTrue(message in e.message!!, e.message)
        }
    }

    @Test
    fun `a negative lifetime is refused`() {
        val e = assertThrows(ReauthException.InvalidCredentials::class.java) { Credentials("at", null, -1) }
        assertTrue("expires_in_ms is negative" in e.message!!)
    }

    @Test
    fun `the defaults are the contract's`() {
        Coordinator().use { assertEquals(defaultConfig(), it.config()) }
    }

    @Test
    fun `tokens never show in toString`() {
        Coordinator().use { core ->
            val credentials = Credentials(at, rt, 60_000)
            core.login(0, credentials)
            val sent = core.submit(1)
            core.handleResponse(2, sent.id, 401)
            val released = core.handleRefreshSucceeded(3, 1, Credentials(at + "2", rt + "2"))
            for (shown in listOf(credentials.toString(), sent.toString(), released.toString())) {
                assertFalse("SECRET" in shown, shown)
            }
            assertEquals(at + "2", (released[1] as Command.Replay).accessToken.expose())
        }
    }
}
