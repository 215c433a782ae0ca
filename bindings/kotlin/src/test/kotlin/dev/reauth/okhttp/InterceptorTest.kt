package dev.reauth.okhttp

import dev.reauth.Config
import dev.reauth.Credentials
import dev.reauth.FailReason
import dev.reauth.LogoutReason
import dev.reauth.store.FileStore
import okhttp3.MediaType.Companion.toMediaType
import okhttp3.OkHttpClient
import okhttp3.Request
import okhttp3.RequestBody
import okhttp3.mockwebserver.Dispatcher
import okhttp3.mockwebserver.MockResponse
import okhttp3.mockwebserver.MockWebServer
import okhttp3.mockwebserver.RecordedRequest
import okio.BufferedSink
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.IOException
import java.nio.file.Path
import java.util.Collections
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** The interceptor against MockWebServer: an API that accepts one token at a time and a
 *  token endpoint that rotates (or refuses). */
class InterceptorTest {
    private val server = MockWebServer()
    private val tokenCalls = AtomicInteger()
    private val apiCalls = AtomicInteger()
    private val bodies: MutableList<String> = Collections.synchronizedList(mutableListOf())
    @Volatile private var current = "at-2"
    @Volatile private var tokenResponse: () -> MockResponse = {
        MockResponse().setBody("""{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}""")
            .setBodyDelay(200, TimeUnit.MILLISECONDS)
    }

    @BeforeEach
    fun start() {
        server.dispatcher = object : Dispatcher() {
            override fun dispatch(request: RecordedRequest): MockResponse = when (request.path) {
                "/token" -> {
                    tokenCalls.incrementAndGet()
                    tokenResponse()
                }
                else -> {
                    apiCalls.incrementAndGet()
                    bodies += request.body.readUtf8()
                    if (request.getHeader("Authorization") == "Bearer $current") {
                        MockResponse().setBody("ok")
                    } else {
                        MockResponse().setResponseCode(401).setBody("expired")
                    }
                }
            }
        }
        server.start()
    }

    @AfterEach
    fun stop() = server.shutdown()

    private fun reauth(onLogout: (LogoutReason) -> Unit = {}, config: Config = Config()) = Reauth(
        tokenUrl = server.url("/token").toString(),
        clientId = "app",
        credentials = Credentials("at-1", "rt-1", 3_600_000),
        config = config,
        onLogout = onLogout,
    )

    private fun client(reauth: Reauth) = OkHttpClient.Builder().addInterceptor(reauth.interceptor).build()

    /** [n] concurrent calls to `/api/…`: each one's failure reason, `null` for an answer. */
    private fun concurrentFailures(client: OkHttpClient, n: Int): List<FailReason?> {
        val pool = Executors.newFixedThreadPool(n)
        val outcomes = (0 until n).map {
            pool.submit<FailReason?> {
                try {
                    client.newCall(Request.Builder().url(server.url("/api/$it")).build()).execute().close()
                    null
                } catch (e: RequestFailedException) {
                    e.reason
                }
            }
        }
        return outcomes.map { it.get(30, TimeUnit.SECONDS) }.also { pool.shutdown() }
    }

    @Test
    fun `a steady-state call is two jumps into native code and nothing else`() {
        // Deterministic cost count (issue 20): with a live token a call is its submit and
        // its response, through the JNI entry points; no generated-binding call (JNA).
        assertTrue(NativeDriver.bound, "the JNI fast path binds on this JVM")
        current = "at-1"
        reauth().use { reauth ->
            val client = client(reauth)
            repeat(20) { client.newCall(Request.Builder().url(server.url("/api/warm")).build()).execute().close() }
            val (jumps, generated) = NativeDriver.jumps.sum() to NativeDriver.generated.sum()
            repeat(200) { i ->
                client.newCall(Request.Builder().url(server.url("/api/items?page=$i")).build()).execute().use {
                    assertEquals(200, it.code)
                }
            }
            assertEquals(400L, NativeDriver.jumps.sum() - jumps, "two per call")
            assertEquals(0L, NativeDriver.generated.sum() - generated, "no JNA call in the steady state")
            // The count is no constant: a refresh costs calls through the generated bindings.
            reauth.forceRefresh()
            current = "at-2"
            client.newCall(Request.Builder().url(server.url("/api/after")).build()).execute().use { assertEquals(200, it.code) }
            assertTrue(NativeDriver.generated.sum() - generated > 0)
        }
    }

    @Test
    fun `64 concurrent calls hit a 401 storm - exactly one refresh, all answered`() {
        reauth().use { reauth ->
            val client = client(reauth)
            val pool = Executors.newFixedThreadPool(64)
            val go = CountDownLatch(1)
            val codes = (0 until 64).map {
                pool.submit<Int> {
                    go.await()
                    client.newCall(Request.Builder().url(server.url("/api/$it")).build()).execute().use { r -> r.code }
                }
            }
            go.countDown()
            assertEquals(List(64) { 200 }, codes.map { it.get(30, TimeUnit.SECONDS) })
            pool.shutdown()
            assertEquals(1, tokenCalls.get(), "exactly one refresh")
            val stats = reauth.stats()
            assertEquals(1L, stats.refreshCycles)
            assertEquals(64L, stats.completed)
        }
    }

    @Test
    fun `an onLogout listener that throws an Error costs no waiting call its wake`() {
        // The listener runs before the wakes of the calls the logout failed; whatever it
        // throws (here an Error, not an Exception), those calls still end.
        tokenResponse = { MockResponse().setResponseCode(400).setBody("""{"error":"invalid_grant"}""") }
        reauth(onLogout = { throw NotImplementedError("the app's listener") }).use { reauth ->
            assertEquals(List(4) { FailReason.REFRESH_REJECTED }, concurrentFailures(client(reauth), 4))
        }
    }

    @Test
    fun `a refused refresh fails every waiting call and logs out once`() {
        tokenResponse = {
            MockResponse().setResponseCode(400).setBody("""{"error":"invalid_grant"}""").setBodyDelay(100, TimeUnit.MILLISECONDS)
        }
        val logouts = CopyOnWriteArrayList<LogoutReason>()
        reauth(onLogout = { logouts += it }).use { reauth ->
            val client = client(reauth)
            assertEquals(List(16) { FailReason.REFRESH_REJECTED }, concurrentFailures(client, 16))
            assertEquals(listOf(LogoutReason.REFRESH_REJECTED), logouts.toList(), "the listener fires once")
            assertEquals(1, tokenCalls.get())
            val e = assertThrows(RequestFailedException::class.java) {
                client.newCall(Request.Builder().url(server.url("/api/after")).build()).execute()
            }
            assertEquals(FailReason.NOT_LOGGED_IN, e.reason)
        }
    }

    @Test
    fun `the recorded logout listener gets the flight recording`() {
        tokenResponse = { MockResponse().setResponseCode(400).setBody("""{"error":"invalid_grant"}""") }
        val ended = CopyOnWriteArrayList<Pair<LogoutReason, dev.reauth.Recording>>()
        Reauth(
            tokenUrl = server.url("/token").toString(),
            clientId = "app",
            credentials = Credentials("at-1", "rt-1", 3_600_000),
            flightRecorder = 8,
            onLogoutRecorded = { reason, recording -> ended += reason to recording },
        ).use { reauth ->
            // One call: a second one still on the wire when the session ends gets its 401
            // after the logout (rule 12: LoggedOut), a race this test need not have.
            assertEquals(listOf(FailReason.REFRESH_REJECTED), concurrentFailures(client(reauth), 1))
            val (reason, recording) = ended.single()
            assertEquals(LogoutReason.REFRESH_REJECTED, reason)
            val explained = recording.explain()
            assertTrue("rule 7.9 (Rejected) logged out" in explained, explained)
            for (text in listOf(recording.json, explained)) {
                assertFalse("at-1" in text || "rt-1" in text, text)
            }
            assertTrue(reauth.recording().size >= 1)
        }
        assertThrows(IllegalArgumentException::class.java) {
            Reauth(tokenUrl = server.url("/token").toString(), clientId = "app", flightRecorder = -1)
        }
    }

    @Test
    fun `a one-shot body is never replayed`() {
        reauth().use { reauth ->
            val client = client(reauth)
            val oneShot = object : RequestBody() {
                override fun contentType() = "text/plain".toMediaType()
                override fun isOneShot() = true
                override fun writeTo(sink: BufferedSink) {
                    sink.writeUtf8("chunk")
                }
            }
            client.newCall(Request.Builder().url(server.url("/upload")).post(oneShot).build()).execute().use { r ->
                assertEquals(401, r.code, "a one-shot call gets its refusal")
                assertEquals("expired", r.body.string())
            }
            assertEquals(listOf("chunk"), bodies.toList(), "sent once")
            assertEquals(0L, reauth.stats().replayed)
            // The refresh it caused still ran: the next call goes out with the new token.
            client.newCall(Request.Builder().url(server.url("/api/next")).build()).execute().use { assertEquals(200, it.code) }
            assertEquals(1, tokenCalls.get())
        }
    }

    @Test
    fun `transient token answers never log out`() {
        // Retry-After 1, not 0: OkHttp itself retries a 503 that says "Retry-After: 0" once.
        tokenResponse = { MockResponse().setResponseCode(503).setHeader("Retry-After", "1") }
        val logouts = CopyOnWriteArrayList<LogoutReason>()
        reauth(onLogout = { logouts += it }, config = Config(maxRetries = 1, initialBackoffMs = 10, maxBackoffMs = 10)).use { reauth ->
            val client = client(reauth)
            val e = assertThrows(RequestFailedException::class.java) {
                client.newCall(Request.Builder().url(server.url("/api/x")).build()).execute()
            }
            assertEquals(FailReason.REFRESH_UNAVAILABLE, e.reason)
            assertTrue(logouts.isEmpty() && reauth.isLoggedIn)
            assertEquals(2, tokenCalls.get(), "the first try and one retry")
        }
    }

    @Test
    fun `a transport error is rethrown and reported`() {
        reauth().use { reauth ->
            val client = client(reauth)
            server.shutdown()
            assertThrows(IOException::class.java) {
                client.newCall(Request.Builder().url(server.url("/api/x")).build()).execute()
            }
            val stats = reauth.stats()
            assertEquals(1L, stats.failed.transport)
            assertEquals(0L, stats.refreshCycles)
        }
    }

    @Test
    fun `logout runs the listener and clears the file store`(@TempDir dir: Path) {
        val store = FileStore(dir.resolve("credentials.json"))
        val logouts = CopyOnWriteArrayList<LogoutReason>()
        Reauth(server.url("/token").toString(), "app", credentials = Credentials("at-1", "rt-1"), store = store, onLogout = { logouts += it }).use { reauth ->
            assertEquals("at-1", store.load()!!.accessToken)
            reauth.logout()
            assertEquals(listOf(LogoutReason.REQUESTED), logouts.toList())
            assertNull(store.load())
        }
    }
}
