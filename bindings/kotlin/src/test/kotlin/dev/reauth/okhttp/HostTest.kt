package dev.reauth.okhttp

import dev.reauth.Config
import dev.reauth.Credentials
import dev.reauth.FailReason
import dev.reauth.LogoutReason
import dev.reauth.ReauthException
import dev.reauth.RequestOptions
import dev.reauth.store.CredentialStore
import dev.reauth.store.FileStore
import dev.reauth.store.MemoryStore
import dev.reauth.store.StoredCredentials
import okhttp3.OkHttpClient
import okhttp3.Request
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.BufferedInputStream
import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.Executors
import java.util.concurrent.Future
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import java.util.logging.Handler
import java.util.logging.Level
import java.util.logging.LogRecord
import java.util.logging.Logger

/**
 * The host layer's failures, each as issue 19 found it, against a scripted token endpoint
 * (answers no real server gives on purpose) and the reference server: a refused login
 * leaves the store alone, a malformed 200 that rotated keeps the rotation, an endless or
 * dribbling body is cut off within the deadline, `close()` ends every wait,
 * `insufficient_scope` never refreshes, a refusing endpoint costs one refresh per token
 * with default routes, and a request tag opts out of refreshing.
 */
class HostTest {
    /** What the scripted token endpoint answers to its `n`-th call (from 0; the last one
     *  repeats). */
    sealed class Reply {
        /** A status and a JSON body. */
        class Json(val status: Int, val body: String) : Reply()

        /** 200, then body bytes forever (chunked), as fast as they go, until the client
         *  hangs up. */
        object Endless : Reply()

        /** 200 with a 1 MB `Content-Length`, then 64 bytes every 50 ms. */
        object Dribble : Reply()

        /** Never answers. */
        object Silent : Reply()

        /** 200 with [body], then the connection closes before the stated length. */
        class Cut(val body: String) : Reply()
    }

    /** A loopback HTTP/1.1 server: `POST /token` answers from [script]; any other request
     *  is an API that answers 200. Records every token request's body, the bytes a
     *  streaming reply wrote and when its client hung up. */
    class Scripted(private val script: List<Reply>) : AutoCloseable {
        private val listener = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
        val url = "http://127.0.0.1:${listener.localPort}"
        val bodies = CopyOnWriteArrayList<String>()
        val streamed = AtomicLong()
        @Volatile var hungUpAt: Long? = null
        private val calls = AtomicInteger()
        private val sockets = CopyOnWriteArrayList<Socket>()
        @Volatile private var stopped = false

        init {
            daemon {
                while (!stopped) {
                    val socket = try {
                        listener.accept()
                    } catch (e: IOException) {
                        return@daemon
                    }
                    sockets += socket
                    daemon {
                        try {
                            serve(socket)
                        } catch (e: IOException) {
                            // The client hung up.
                        } finally {
                            socket.close()
                        }
                    }
                }
            }
        }

        private fun serve(socket: Socket) {
            val input = BufferedInputStream(socket.getInputStream())
            val out = socket.getOutputStream()
            while (!stopped) {
                val head = readHead(input) ?: return
                val length = head.lines().firstNotNullOfOrNull { line ->
                    line.lowercase().removePrefix("content-length:").takeIf { it != line.lowercase() }?.trim()?.toIntOrNull()
                } ?: 0
                val body = input.readNBytes(length).toString(Charsets.UTF_8)
                if (!head.startsWith("POST /token")) {
                    out.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".toByteArray())
                    out.flush()
                    continue
                }
                bodies += body
                val n = calls.getAndIncrement()
                when (val reply = script.getOrElse(n) { script.last() }) {
                    is Reply.Json -> {
                        val bytes = reply.body.toByteArray()
                        out.write("HTTP/1.1 ${reply.status} X\r\nContent-Type: application/json\r\nContent-Length: ${bytes.size}\r\n\r\n".toByteArray())
                        out.write(bytes)
                        out.flush()
                    }
                    Reply.Endless -> stream(out, "Transfer-Encoding: chunked", 0) {
                        val chunk = "4000\r\n${"x".repeat(0x4000)}\r\n".toByteArray()
                        out.write(chunk)
                        0x4000
                    }
                    Reply.Dribble -> stream(out, "Content-Length: 1000000", 50) {
                        out.write(ByteArray(64) { ' '.code.toByte() })
                        out.flush()
                        64
                    }
                    Reply.Silent -> {
                        while (!stopped) Thread.sleep(20)
                        return
                    }
                    is Reply.Cut -> {
                        val bytes = reply.body.toByteArray()
                        out.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${bytes.size + 100}\r\n\r\n".toByteArray())
                        out.write(bytes)
                        out.flush()
                        return
                    }
                }
            }
        }

        /** A 200 whose body [write] produces until the client hangs up (noted). */
        private fun stream(out: java.io.OutputStream, framing: String, pauseMs: Long, write: () -> Int) {
            out.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n$framing\r\n\r\n".toByteArray())
            try {
                while (!stopped) {
                    streamed.addAndGet(write().toLong())
                    if (pauseMs > 0) Thread.sleep(pauseMs)
                }
            } catch (e: IOException) {
                hungUpAt = System.nanoTime()
                throw e
            }
        }

        private fun readHead(input: InputStream): String? {
            val head = ByteArrayOutputStream()
            var tail = 0
            while (true) {
                val b = input.read()
                if (b < 0) return null
                head.write(b)
                tail = (tail shl 8) or b
                if (tail == 0x0d0a0d0a) return head.toString(Charsets.UTF_8)
            }
        }

        override fun close() {
            stopped = true
            listener.close()
            sockets.forEach { it.close() }
        }
    }

    /** The records of the `dev.reauth` logger while [block] runs. */
    private fun <T> logged(block: (List<LogRecord>) -> T): T {
        val records = CopyOnWriteArrayList<LogRecord>()
        val handler = object : Handler() {
            override fun publish(record: LogRecord) {
                records += record
            }
            override fun flush() {}
            override fun close() {}
        }
        val logger = Logger.getLogger("dev.reauth")
        logger.addHandler(handler)
        try {
            return block(records)
        } finally {
            logger.removeHandler(handler)
        }
    }

    private fun quick(refreshTimeoutMs: Long = 2_000, maxRetries: Int = 3) =
        Config(initialBackoffMs = 10, maxBackoffMs = 50, refreshTimeoutMs = refreshTimeoutMs, maxRetries = maxRetries, maxWaitMs = 20_000)

    private fun client(reauth: Reauth) = OkHttpClient.Builder().addInterceptor(reauth.interceptor).build()

    private fun get(url: String) = Request.Builder().url(url).build()

    @Test
    fun `a refused login changes nothing in the store`(@TempDir dir: Path) {
        Scripted(listOf(Reply.Silent)).use { m ->
            val store = FileStore(dir.resolve("credentials.json"))
            store.save(StoredCredentials("at-1", "rt-good"))
            val before = Files.readString(store.path)
            Reauth("${m.url}/token", "app", store = store).use { reauth ->
                for (bad in listOf("tok\r\nX: 1", "tok en", "")) {
                    assertThrows(ReauthException.InvalidCredentials::class.java) { reauth.login(Credentials(bad, "new-rt")) }
                    assertEquals(before, Files.readString(store.path), "${bad.length}-byte token: the file is unchanged")
                }
                assertTrue(reauth.isLoggedIn, "the session is unchanged too")
                // A good login is stored.
                reauth.login(Credentials("at-2", "rt-2", 60_000))
                assertEquals("rt-2", store.load()!!.refreshToken)
            }
            // Built with invalid credentials: the constructor throws and writes nothing.
            val empty = MemoryStore()
            assertThrows(ReauthException.InvalidCredentials::class.java) {
                Reauth("${m.url}/token", "app", credentials = Credentials("a\nb", "rt"), store = empty)
            }
            assertNull(empty.load())
        }
    }

    @Test
    fun `close ends every waiting call at once and refuses later calls`() {
        Scripted(listOf(Reply.Silent)).use { m ->
            val reauth = Reauth("${m.url}/token", "app", store = MemoryStore(StoredCredentials("at-1", "rt-1")))
            reauth.forceRefresh() // every call now waits for a refresh the endpoint never answers
            val http = client(reauth)
            val pool = Executors.newCachedThreadPool { r -> Thread(r).apply { isDaemon = true } }
            val waiting: List<Future<Throwable?>> = (0 until 4).map { i ->
                pool.submit<Throwable?> {
                    try {
                        http.newCall(get("${m.url}/api/$i")).execute().close()
                        null
                    } catch (e: Throwable) {
                        e
                    }
                }
            }
            while (reauth.stats().submitted < 4) Thread.sleep(5)
            Thread.sleep(50)
            val closing = System.nanoTime()
            reauth.close()
            for (w in waiting) {
                val e = w.get(5, TimeUnit.SECONDS)
                assertTrue(e is ReauthClosedException, "ended by close: $e")
            }
            val ms = (System.nanoTime() - closing) / 1_000_000
            assertTrue(ms < 2_000, "the waits ended promptly: $ms ms")
            val later = System.nanoTime()
            assertThrows(ReauthClosedException::class.java) { http.newCall(get("${m.url}/api/later")).execute() }
            assertTrue((System.nanoTime() - later) / 1_000_000 < 1_000, "at once")
            assertEquals(4L, reauth.stats().submitted, "nothing submitted after close")
            assertThrows(ReauthClosedException::class.java) { reauth.login(Credentials("at-9", "rt-9")) }
            reauth.close() // idempotent
            pool.shutdownNow()
        }
    }

    @Test
    fun `a call cancelled while it waits for a refresh ends at once`() {
        Scripted(listOf(Reply.Silent)).use { m ->
            Reauth("${m.url}/token", "app", store = MemoryStore(StoredCredentials("at-1", "rt-1"))).use { reauth ->
                reauth.forceRefresh()
                val call = client(reauth).newCall(get("${m.url}/api"))
                val pool = Executors.newSingleThreadExecutor { r -> Thread(r).apply { isDaemon = true } }
                val waiting = pool.submit<Throwable?> {
                    try {
                        call.execute().close()
                        null
                    } catch (e: Throwable) {
                        e
                    }
                }
                while (reauth.stats().submitted < 1) Thread.sleep(5)
                call.cancel()
                val e = waiting.get(2, TimeUnit.SECONDS)
                assertTrue(e is IOException && e !is RequestFailedException, "ended by the cancel: $e")
                assertEquals(1L, reauth.stats().cancelled, "the core was told")
                pool.shutdownNow()
            }
        }
    }

    @Test
    fun `a malformed 200 that rotated keeps the rotation and is logged`() {
        // The first answer rotates rt-1 to rt-2 but its access token is unusable: the retry
        // must present rt-2 (presenting rt-1 again is a reuse: the family would be revoked).
        val script = listOf(
            Reply.Json(200, """{"access_token":"bad token","refresh_token":"rt-2"}"""),
            Reply.Json(200, """{"access_token":"at-3","token_type":"Bearer","expires_in":60,"refresh_token":"rt-3"}"""),
        )
        Scripted(script).use { m ->
            val store = MemoryStore(StoredCredentials("at-1", "rt-1"))
            logged { records ->
                // A refresh deadline far above the wait: a refused answer is reported at
                // once, not left to time out (issue 19's third failure).
                Reauth("${m.url}/token", "app", store = store, config = quick(refreshTimeoutMs = 10_000)).use { reauth ->
                    reauth.forceRefresh()
                    val started = System.nanoTime()
                    client(reauth).newCall(get("${m.url}/api")).execute().use { assertEquals(200, it.code) }
                    val ms = (System.nanoTime() - started) / 1_000_000
                    assertTrue(ms < 5_000, "reported at once, not after the refresh deadline: $ms ms")
                    assertEquals(2, m.bodies.size, m.bodies.toString())
                    assertTrue(m.bodies[0].contains("refresh_token=rt-1"), m.bodies[0])
                    assertTrue(m.bodies[1].contains("refresh_token=rt-2"), "the retry presents the rotation: ${m.bodies[1]}")
                    val stored = store.load()!!
                    assertEquals(listOf("at-3", "rt-3"), listOf(stored.accessToken, stored.refreshToken))
                    assertEquals(2L, reauth.stats().refreshAttempts)
                }
                val warnings = records.filter { it.level == Level.WARNING }.map { it.message }
                assertTrue(warnings.any { "unusable access_token" in it && "transient" in it }, warnings.toString())
                for (r in records) {
                    for (secret in listOf("bad token", "rt-1", "rt-2", "at-3", "rt-3")) {
                        assertTrue(secret !in r.message, "a log line holds token text: ${r.message}")
                    }
                }
            }
        }
    }

    /** A store shared with a sibling process that rotates the instant the refresh lock is
     *  released: the sibling then holds the lock, refreshes rt-2 to rt-sibling and stores
     *  it (once). */
    class SiblingStore(private val inner: MemoryStore) : CredentialStore by inner {
        val rotations = AtomicInteger()

        override fun <T> locked(block: () -> T): T {
            val result = inner.locked(block)
            if (inner.load()?.refreshToken == "rt-2" && rotations.getAndIncrement() == 0) {
                inner.save(StoredCredentials("at-sibling", "rt-sibling", System.currentTimeMillis() + 60_000))
            }
            return result
        }
    }

    @Test
    fun `a sibling rotation right after the lock is never overwritten`() {
        // §12.2: the refresh result is stored under the lock; the StoreCredentials that
        // follows is not written again, or it would put the spent rt-2 back over the
        // sibling's rt-sibling — and the next refresh would present rt-2: a reuse.
        val script = listOf(Reply.Json(200, """{"access_token":"at-2","token_type":"Bearer","expires_in":60,"refresh_token":"rt-2"}"""))
        Scripted(script).use { m ->
            val inner = MemoryStore(StoredCredentials("at-1", "rt-1"))
            val store = SiblingStore(inner)
            Reauth("${m.url}/token", "app", store = store, config = quick()).use { reauth ->
                val http = client(reauth)
                reauth.forceRefresh()
                http.newCall(get("${m.url}/api")).execute().use { assertEquals(200, it.code) }
                assertEquals(1, store.rotations.get())
                assertEquals("rt-sibling", inner.load()!!.refreshToken)
                // The next refresh adopts the sibling's credentials instead of presenting rt-2.
                reauth.forceRefresh()
                http.newCall(get("${m.url}/api")).execute().use { assertEquals(200, it.code) }
                assertEquals(1, m.bodies.size, "rt-2 presented again: ${m.bodies}")
                assertEquals("rt-sibling", inner.load()!!.refreshToken)
            }
        }
    }

    /** A store whose save blocks until the test releases it (a slow disk). */
    class HeldStore(private val inner: MemoryStore) : CredentialStore by inner {
        val saving = java.util.concurrent.CountDownLatch(1)
        val release = java.util.concurrent.CountDownLatch(1)

        override fun save(credentials: StoredCredentials) {
            saving.countDown()
            check(release.await(30, TimeUnit.SECONDS))
            inner.save(credentials)
        }
    }

    /** Runs [work] on a thread while something is held up: it must finish first. */
    private fun completesWhile(held: java.util.concurrent.CountDownLatch, work: () -> Unit) {
        val done = Executors.newSingleThreadExecutor().submit(work)
        done.get(10, TimeUnit.SECONDS) // throws if the requests waited for what is held up
        assertEquals(1L, held.count, "held up throughout")
    }

    @Test
    fun `no lock is held across the store or the logout hook`() {
        // Issue 20: a save that blocks (a login on one thread) and an onLogout hook that
        // blocks hold up no other call — they complete while those are still held.
        Scripted(listOf(Reply.Silent)).use { m ->
            val store = HeldStore(MemoryStore(StoredCredentials("at-1", "rt-1")))
            val hookRunning = java.util.concurrent.CountDownLatch(1)
            val hookRelease = java.util.concurrent.CountDownLatch(1)
            val onLogout: (LogoutReason) -> Unit = {
                hookRunning.countDown()
                check(hookRelease.await(30, TimeUnit.SECONDS))
            }
            Reauth("${m.url}/token", "app", store = store, onLogout = onLogout, config = quick()).use { reauth ->
                val http = client(reauth)
                val pool = Executors.newCachedThreadPool()
                val login = pool.submit { reauth.login(Credentials("at-2", "rt-2", null)) }
                assertTrue(store.saving.await(10, TimeUnit.SECONDS))
                completesWhile(store.release) {
                    repeat(20) { http.newCall(get("${m.url}/api")).execute().use { assertEquals(200, it.code) } }
                }
                store.release.countDown()
                login.get(10, TimeUnit.SECONDS)
                val logout = pool.submit { reauth.logout() }
                assertTrue(hookRunning.await(10, TimeUnit.SECONDS))
                completesWhile(hookRelease) {
                    val e = assertThrows(RequestFailedException::class.java) { http.newCall(get("${m.url}/api")).execute() }
                    assertEquals(FailReason.NOT_LOGGED_IN, e.reason)
                }
                hookRelease.countDown()
                logout.get(10, TimeUnit.SECONDS)
                pool.shutdown()
            }
        }
    }

    @Test
    fun `a 200 that breaks off after its rotation keeps it`() {
        val script = listOf(
            Reply.Cut("""{"token_type":"Bearer","refresh_token":"rt-2","access_token":"at-"""),
            Reply.Json(200, """{"access_token":"at-3","token_type":"Bearer","refresh_token":"rt-3"}"""),
        )
        Scripted(script).use { m ->
            val store = MemoryStore(StoredCredentials("at-1", "rt-1"))
            Reauth("${m.url}/token", "app", store = store, config = quick()).use { reauth ->
                reauth.forceRefresh()
                client(reauth).newCall(get("${m.url}/api")).execute().use { assertEquals(200, it.code) }
                assertEquals(2, m.bodies.size, m.bodies.toString())
                assertTrue(m.bodies[1].contains("refresh_token=rt-2"), "the retry presents the rotation that arrived before the cut: ${m.bodies[1]}")
                assertEquals("rt-3", store.load()!!.refreshToken)
            }
        }
    }

    @Test
    fun `an endless token response is cut off at the size limit`() {
        Scripted(listOf(Reply.Endless)).use { m ->
            val config = quick(refreshTimeoutMs = 3_000, maxRetries = 0)
            Reauth("${m.url}/token", "app", store = MemoryStore(StoredCredentials("at-1", "rt-1")), config = config).use { reauth ->
                reauth.forceRefresh()
                val started = System.nanoTime()
                val e = assertThrows(RequestFailedException::class.java) { client(reauth).newCall(get("${m.url}/api")).execute() }
                assertEquals(FailReason.REFRESH_UNAVAILABLE, e.reason)
                val ms = (System.nanoTime() - started) / 1_000_000
                assertTrue(ms < 3_000, "transient at once, before the refresh deadline: $ms ms")
                // Read up to the limit, then hung up: what the server managed to write is the
                // limit plus socket buffers, not gigabytes.
                val deadline = System.nanoTime() + 2_000_000_000
                while (m.hungUpAt == null && System.nanoTime() < deadline) Thread.sleep(10)
                assertNotNull(m.hungUpAt, "the client hung up (${m.streamed.get()} bytes written)")
                assertTrue(m.streamed.get() < 32L shl 20, "${m.streamed.get()} bytes written before the client hung up")
                assertEquals(1L, reauth.stats().refreshTransient)
            }
        }
    }

    @Test
    fun `a dribbling token response ends at the refresh deadline`() {
        Scripted(listOf(Reply.Dribble)).use { m ->
            val config = quick(refreshTimeoutMs = 1_500, maxRetries = 0)
            Reauth("${m.url}/token", "app", store = MemoryStore(StoredCredentials("at-1", "rt-1")), config = config).use { reauth ->
                reauth.forceRefresh()
                val started = System.nanoTime()
                val e = assertThrows(RequestFailedException::class.java) { client(reauth).newCall(get("${m.url}/api")).execute() }
                assertEquals(FailReason.REFRESH_UNAVAILABLE, e.reason)
                // The call is abandoned with the attempt: the client hangs up by the deadline,
                // never reads on after the core gave up.
                val deadline = started + 4_000_000_000
                while (m.hungUpAt == null && System.nanoTime() < deadline) Thread.sleep(10)
                val hungUp = m.hungUpAt
                assertNotNull(hungUp, "the client still reads the body ${(System.nanoTime() - started) / 1_000_000} ms on")
                val ms = (hungUp!! - started) / 1_000_000
                assertTrue(ms < 1_500 + 1_000, "hung up $ms ms after the call started")
            }
        }
    }

    private fun credentials(token: JSONObject) =
        Credentials(token.getString("access_token"), token.getString("refresh_token"), (token.getDouble("expires_in") * 1000).toLong())

    private val forbidding = Config(refreshStatuses = listOf(401, 403))

    @Test
    fun `insufficient_scope is the caller's answer and never refreshes`() {
        EndToEndTest.TokenServer().use { server ->
            Reauth("${server.url}/oauth/token", "app", credentials = credentials(server.login()), config = forbidding).use { reauth ->
                val http = client(reauth)
                repeat(20) { i ->
                    http.newCall(get("${server.url}/api/scoped/$i")).execute().use { assertEquals(403, it.code) }
                    http.newCall(get("${server.url}/api/me")).execute().use { assertEquals(200, it.code) }
                }
                val s = server.stats()
                assertEquals(listOf(20L, 20L, 0L), listOf(s.getLong("scope_refusals"), s.getLong("served"), s.getLong("refresh_calls")), s.toString())
                val stats = reauth.stats()
                assertEquals(0L, stats.refreshCycles)
                assertEquals(20L, stats.cancelled, "each ended by the adapter with a cancel (§12.4)")
                assertEquals(0L, stats.failed.unauthorized)
                assertTrue(reauth.isLoggedIn)
            }
        }
    }

    /** Contract rule 20 through default routes: an endpoint that refuses every token with a
     *  bare 403 (a refresh status here), called every 100 ms beside normal traffic every
     *  20 ms, with 1.5 s tokens for 6 s. Each call to it is answered with its 403; it costs
     *  at most one refresh per token, never a logout. (Without route keys each call spent
     *  a refresh.) */
    @Test
    fun `a refusing endpoint costs one refresh per token and no logout`() {
        EndToEndTest.TokenServer("--access-ttl-ms", "1500").use { server ->
            val logouts = CopyOnWriteArrayList<LogoutReason>()
            Reauth("${server.url}/oauth/token", "app", credentials = credentials(server.login()), config = forbidding, onLogout = { logouts += it }).use { reauth ->
                val http = client(reauth)
                val end = System.nanoTime() + 6_000_000_000
                val problems = CopyOnWriteArrayList<String>()
                val ok = AtomicLong()
                val normal = Thread {
                    while (System.nanoTime() < end) {
                        try {
                            http.newCall(get("${server.url}/api/me")).execute().use { r ->
                                if (r.code == 200) ok.incrementAndGet() else problems += "normal call: ${r.code}"
                            }
                        } catch (e: IOException) {
                            problems += "normal call: $e"
                        }
                        Thread.sleep(20)
                    }
                }
                normal.start()
                var refused = 0L
                while (System.nanoTime() < end) {
                    try {
                        http.newCall(get("${server.url}/api/forbidden/admin")).execute().use { r ->
                            if (r.code == 403) refused++ else problems += "forbidden call: ${r.code}"
                        }
                    } catch (e: IOException) {
                        problems += "forbidden call: $e"
                    }
                    Thread.sleep(100)
                }
                normal.join()
                val stats = reauth.stats()
                val summary = "$refused refused, ${ok.get()} ok, ${stats.refreshCycles} refresh cycles, " +
                    "${server.stats().getLong("tokens_issued")} tokens issued, logouts $logouts, problems ${problems.take(5)}"
                println("refusing endpoint: $summary")
                assertEquals(emptyList<String>(), problems.toList(), summary)
                assertTrue(refused >= 40 && ok.get() >= 100, "work was done: $summary")
                assertEquals(emptyList<LogoutReason>(), logouts.toList(), summary)
                assertEquals(refused, stats.failed.unauthorized, "each refusal handed back, counted once: $summary")
                // The server states `expires_in: 1` for its 1.5 s tokens, so expiry alone
                // refreshes every 0.5 s (rule 2's skew, half the lifetime): 12 in 6 s. The
                // refusing endpoint may add one per token — at most as many again — never one
                // per call (that would be one per refusal, about 60).
                assertTrue(stats.refreshCycles <= 2 * 13, summary)
                assertTrue(stats.refreshCycles * 2 < refused, summary)
            }
        }
    }

    @Test
    fun `a request tag opts out of refreshing`() {
        EndToEndTest.TokenServer().use { server ->
            Reauth("${server.url}/oauth/token", "app", credentials = credentials(server.login()), config = forbidding).use { reauth ->
                // A refresh opt-out (rule 19): its 403 comes back as is, no refresh.
                val optOut = Request.Builder().url("${server.url}/api/forbidden/x")
                    .tag(RequestOptions::class.java, RequestOptions(refresh = false)).build()
                client(reauth).newCall(optOut).execute().use { assertEquals(403, it.code) }
                assertEquals(listOf(0L, 0L), listOf(reauth.stats().refreshCycles, server.stats().getLong("refresh_calls")))
                assertEquals(listOf(1L, 0L), listOf(reauth.stats().completed, reauth.stats().failed.unauthorized), "completed as it is")
                assertTrue(reauth.isLoggedIn)
            }
        }
    }

    private companion object {
        fun daemon(block: () -> Unit) = Thread(block).apply {
            isDaemon = true
            start()
        }
    }
}
