package dev.reauth.okhttp

import dev.reauth.Command
import dev.reauth.Config
import dev.reauth.Coordinator
import dev.reauth.Credentials
import dev.reauth.FailReason
import dev.reauth.LogoutReason
import dev.reauth.ReauthException
import dev.reauth.RefreshFailure
import dev.reauth.RefreshPlan
import dev.reauth.RequestOptions
import dev.reauth.Stats
import dev.reauth.Token
import dev.reauth.TokenAnswer
import dev.reauth.TokenEndpoint
import dev.reauth.afterRejection
import dev.reauth.defaultRoute
import dev.reauth.isCallersAnswer
import dev.reauth.keepRotation
import dev.reauth.maxTokenResponseBytes
import dev.reauth.planRefresh
import dev.reauth.readTokenResponse
import dev.reauth.storedFromLogin
import dev.reauth.storedToCredentials
import dev.reauth.store.CredentialStore
import dev.reauth.store.MemoryStore
import dev.reauth.store.StoredCredentials
import okhttp3.Call
import okhttp3.Interceptor
import okhttp3.MediaType.Companion.toMediaTypeOrNull
import okhttp3.OkHttpClient
import okhttp3.Request
import okhttp3.RequestBody.Companion.toRequestBody
import okhttp3.Response
import java.io.IOException
import java.io.InterruptedIOException
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executors
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.ThreadFactory
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock
import java.util.logging.Level
import java.util.logging.Logger
import kotlin.concurrent.withLock

/** The coordinator failed the request; [reason] says why. An [IOException], as OkHttp
 *  requires of an interceptor's failures. */
class RequestFailedException(val reason: FailReason) : IOException("request failed: ${reason.name.lowercase()}")

/** [Reauth.close] was called: the call was not sent, or its wait for a command ended. */
class ReauthClosedException : IOException("reauth is closed: the request was not sent")

/**
 * Token refresh for OkHttp: add [interceptor] to the app's `OkHttpClient`.
 *
 * ```
 * val reauth = Reauth(
 *     tokenUrl = "https://auth.example.com/oauth/token",
 *     clientId = "my-app",
 *     store = FileStore(Path.of("credentials.json")),
 *     onLogout = { reason -> showLogin(reason) },
 * )
 * val client = OkHttpClient.Builder().addInterceptor(reauth.interceptor).build()
 * ```
 *
 * Every call is submitted to the coordinator and waits for its command: it goes out with
 * `Authorization: Bearer …`, its status is reported, and on a 401 it waits for the one
 * refresh and is replayed with the new token. What the host half of the contract decides
 * — the refresh request, the reading of the token endpoint's answer (at most
 * `maxTokenResponseBytes()`), RFC 6750 challenges, default route keys and the
 * credential-store recipe (contract §12) — is `reauth-host`'s, through the generated
 * bindings; this class keeps what only the JVM can do: waking the callers, the timer and
 * the HTTP calls.
 *
 * - The refresh runs on [tokenClient], its own `OkHttpClient`, on a worker thread — never
 *   through the app's client, so it cannot deadlock on that client's dispatcher limits
 *   (the classic `Authenticator` deadlock) — within the config's `refreshTimeoutMs`, body
 *   included.
 * - Per-request options ride in a request tag:
 *   `Request.Builder().tag(RequestOptions::class.java, RequestOptions(refresh = false))`.
 *   Without a route of its own a call gets its default route (method, origin, path), so
 *   an endpoint that refuses every token costs one refresh per token (contract rule 20).
 *   One-shot and duplex bodies are never replayed.
 * - A refusal with `WWW-Authenticate: Bearer error="insufficient_scope"` is the caller's
 *   answer: returned as it is, no refresh (§12.4).
 * - A failed call throws [RequestFailedException], except `Unauthorized`, which returns
 *   the 401/403 response itself, and transport errors, which are rethrown as they were.
 *   After [close], calls throw [ReauthClosedException].
 */
class Reauth(
    tokenUrl: String,
    clientId: String,
    clientSecret: String? = null,
    credentials: Credentials? = null,
    private val store: CredentialStore = MemoryStore(),
    config: Config = Config(),
    private val onLogout: ((LogoutReason) -> Unit)? = null,
    /** The client the refresh runs on. Never the authenticated one; and it must not
     *  retry a POST by itself (OkHttp's `retryOnConnectionFailure` would send a refresh
     *  token again after a lost response — a reuse the server punishes by revoking the
     *  family), so the default switches that off. The refresh uses a copy of it with the
     *  config's `refreshTimeoutMs` as its call timeout. */
    val tokenClient: OkHttpClient = OkHttpClient.Builder().retryOnConnectionFailure(false).build(),
    /** Send [clientSecret] with HTTP Basic authentication instead of in the form body
     *  (RFC 6749 §2.3.1). */
    basicAuth: Boolean = false,
) : AutoCloseable {
    private val core = Coordinator(config)
    private val endpoint = TokenEndpoint(tokenUrl, clientId, clientSecret, basicAuth)
    private val refreshStatuses: Set<Int>
    private val endpointClient: OkHttpClient

    /** Every core call and the routing of its batch happen under this lock, so batches
     *  are carried out in the order the core produced them. */
    private val lock = ReentrantLock()
    private val waiters = HashMap<Long, Waiter>()
    private val threads = ThreadFactory { r -> Thread(r, "reauth").apply { isDaemon = true } }
    private val timer = Executors.newSingleThreadScheduledExecutor(threads)
    private val workers = Executors.newCachedThreadPool(threads)
    private var armed: ScheduledFuture<*>? = null
    private var armedAt: Long? = null
    @Volatile private var closed = false

    /** Default route keys already computed: `defaultRoute` is a pure function, and a call
     *  across the FFI with five strings costs tens of microseconds. */
    private val routes = ConcurrentHashMap<String, Long>()
    private var lastStats: Stats? = null
    private var lastLoggedIn = false

    init {
        try {
            val c = core.config()
            refreshStatuses = c.refreshStatuses.orEmpty().toSet()
            // The core abandons an attempt after refreshTimeoutMs: the call must not go on
            // reading (an endless body) after it.
            endpointClient = tokenClient.newBuilder()
                .callTimeout(c.refreshTimeoutMs, TimeUnit.MILLISECONDS)
                // A redirect would carry the refresh token to another URL (a 307/308 keeps
                // the POST body): a token endpoint answers, it does not redirect.
                .followRedirects(false)
                .build()
            if (credentials != null) {
                login(credentials) // refused credentials throw here, and nothing is stored
            } else {
                // An unreadable store fails the constructor (as before); later reads log.
                store.load()?.let { stored ->
                    val restored = storedToCredentials(stored.toRecord(), wallNow())
                    apply { now -> core.login(now, restored) }
                }
            }
        } catch (e: Throwable) {
            timer.shutdownNow()
            workers.shutdownNow()
            endpoint.close()
            core.close()
            throw e
        }
    }

    /** The interceptor to add with `OkHttpClient.Builder.addInterceptor` (an application
     *  interceptor: it may send a call twice). */
    val interceptor: Interceptor = Interceptor { chain -> intercept(chain) }

    /** Starts (or replaces) the session with credentials the app obtained. They are stored
     *  once the coordinator accepted them: refused credentials throw
     *  [ReauthException.InvalidCredentials] and change nothing, in the session or in the store. */
    fun login(credentials: Credentials) {
        val stored = storedFromLogin(credentials, wallNow()).toStore()
        apply({ now -> core.login(now, credentials) }) { save(stored, "the credentials") }
    }

    /** Ends the session: waiting calls fail `LOGGED_OUT`, the store is cleared, [onLogout] runs. */
    fun logout() = apply { now -> core.logout(now) }

    /** The app knows the token is bad (a push said so): the next call refreshes. */
    fun forceRefresh() = apply { now -> core.forceRefresh(now) }

    /** The coordinator's counters (after [close], as they were then). */
    fun stats(): Stats = lock.withLock { lastStats ?: core.stats() }

    /** Whether a session exists (after [close], whether one did then). */
    val isLoggedIn: Boolean get() = lock.withLock { if (closed) lastLoggedIn else core.isLoggedIn() }

    /**
     * Ends the interceptor's service: every call waiting for a command (for a refresh, say)
     * throws [ReauthClosedException] at once, and so does every later call, without being
     * sent; a call on the wire gets it when its response arrives. Then stops the timer and
     * the workers and frees the coordinator. The store is kept (this is not a logout).
     * Idempotent.
     */
    override fun close() {
        val ending: List<Waiter>
        lock.withLock {
            if (closed) return
            closed = true
            lastStats = core.stats()
            lastLoggedIn = core.isLoggedIn()
            ending = waiters.values.toList()
            waiters.clear()
            armed?.cancel(false)
            armed = null
        }
        for (waiter in ending) {
            waiter.done = true
            waiter.put(Event.Closed)
        }
        timer.shutdownNow()
        workers.shutdownNow() // interrupts a refresh on the wire
        lock.withLock {
            endpoint.close()
            core.close()
        }
    }

    // ----- the interceptor ---------------------------------------------------------------

    private fun intercept(chain: Interceptor.Chain): Response {
        val request = chain.request()
        val waiter = submit(options(request))
        var last: Response? = null
        try {
            while (true) {
                when (val event = waiter.take(chain.call())) {
                    is Event.Send -> {
                        last?.close()
                        last = null
                        val sent = request.newBuilder().header("Authorization", "Bearer ${event.token}").build()
                        val response = chain.proceed(sent)
                        if (response.code in refreshStatuses && isCallersAnswer(response.headers("WWW-Authenticate"))) {
                            // §12.4: `insufficient_scope` — the token is good, the endpoint
                            // says no. The caller's answer; no refresh.
                            end(waiter) { now -> core.cancel(now, waiter.id) }
                            return response
                        }
                        last = response
                        apply { now -> core.handleResponse(now, waiter.id, response.code) }
                    }
                    Event.Complete -> {
                        // The core completes only a request it was told the response of.
                        return last ?: throw RequestFailedException(FailReason.UNAUTHORIZED)
                    }
                    is Event.Fail -> {
                        // Rule 7.6/7.20: the caller gets the refusal the request got.
                        if (event.reason == FailReason.UNAUTHORIZED && last != null) return last
                        last?.close()
                        throw RequestFailedException(event.reason)
                    }
                    Event.Closed -> {
                        last?.close()
                        throw ReauthClosedException()
                    }
                }
            }
        } catch (e: InterruptedException) {
            last?.close()
            abandon(waiter)
            throw InterruptedIOException("interrupted while waiting for a token refresh").apply { initCause(e) }
        } catch (e: Throwable) {
            // A transport error (rule 7.17), the call was cancelled, or reauth was closed:
            // the request ends.
            last?.close()
            abandon(waiter)
            throw e
        }
    }

    /** The call's options: the caller's [RequestOptions] tag, else the defaults; the route
     *  is the caller's or the default one (method, origin, path — contract §12.4, rule 20);
     *  a one-shot or duplex body is never replayed. */
    private fun options(request: Request): RequestOptions {
        val given = request.tag(RequestOptions::class.java) ?: RequestOptions()
        val url = request.url
        // As in a URL's authority (and so as the other adapters name it): [::1].
        val host = if (url.host.contains(':')) "[${url.host}]" else url.host
        val route = given.route ?: "${request.method} ${url.scheme}://$host:${url.port}${url.encodedPath}".let { key ->
            routes[key] ?: defaultRoute(request.method, url.scheme, host, url.port, url.encodedPath).also {
                if (routes.size >= ROUTE_CACHE) routes.clear()
                routes[key] = it
            }
        }
        val body = request.body
        val replayable = given.replayable && (body == null || !(body.isOneShot() || body.isDuplex()))
        return given.copy(replayable = replayable, route = route)
    }

    // ----- routing: every core call and its batch under one lock --------------------------

    private sealed class Event {
        class Send(val token: String) : Event()
        object Complete : Event()
        class Fail(val reason: FailReason) : Event()
        object Closed : Event()
    }

    private class Waiter(val id: Long) {
        private val events = LinkedBlockingQueue<Event>()
        @Volatile var done = false
        fun put(event: Event) = events.put(event)

        /** The next event; an [IOException] once the OkHttp call was cancelled. */
        fun take(call: Call): Event {
            while (true) {
                events.poll(CANCEL_POLL_MS, TimeUnit.MILLISECONDS)?.let { return it }
                if (call.isCanceled()) throw IOException("Canceled")
            }
        }
    }

    private fun now(): Long = System.nanoTime() / 1_000_000

    private fun wallNow(): Long = System.currentTimeMillis()

    private fun submit(options: RequestOptions): Waiter {
        lateinit var waiter: Waiter
        apply({ now -> core.submit(now, options).let { waiter = Waiter(it.id); it.commands } }) {
            // Registered before its batch is routed, under the lock every core call takes.
            waiters[waiter.id] = waiter
        }
        return waiter
    }

    /** Ends a request the caller gave up on (a transport error, a cancelled call). */
    private fun abandon(waiter: Waiter) = end(waiter) { now ->
        if (core.isInFlight(waiter.id)) core.handleTransportError(now, waiter.id) else core.cancel(now, waiter.id)
    }

    /** Ends a request with [input] (a cancel or a transport error) unless it ended already. */
    private fun end(waiter: Waiter, input: (Long) -> List<Command>) {
        lock.withLock {
            waiters.remove(waiter.id)
            if (waiter.done || closed) return
            waiter.done = true
            quietly { apply(input) }
        }
    }

    private fun apply(input: (Long) -> List<Command>) = apply(input) {}

    /** Applies one input and carries out its batch; [register] runs on success before the
     *  batch is routed, under the same lock. */
    private fun apply(input: (Long) -> List<Command>, register: () -> Unit) = lock.withLock {
        if (closed) throw ReauthClosedException()
        val now = now()
        val commands = input(now)
        register()
        route(commands, now)
    }

    private inline fun quietly(block: () -> Unit) {
        try {
            block()
        } catch (e: ReauthException) {
            // The request or attempt already ended: refused, nothing changed.
        } catch (e: ReauthClosedException) {
            // Closed meanwhile: nothing left to tell.
        }
    }

    /** Carries out a batch, in order, under the lock ([onLogout] too, as before: it must
     *  not block). */
    private fun route(commands: List<Command>, now: Long) {
        for (command in commands) {
            when (command) {
                is Command.Send -> tell(command.id, Event.Send(command.accessToken.expose()))
                is Command.Replay -> tell(command.id, Event.Send(command.accessToken.expose()))
                is Command.Complete -> tell(command.id, Event.Complete)
                is Command.Fail -> tell(command.id, Event.Fail(command.reason))
                is Command.Refresh -> {
                    val attempt = command.attempt
                    val refreshToken = command.refreshToken
                    workers.execute { refresh(attempt, refreshToken) }
                }
                is Command.StoreCredentials -> {
                    // Already in the store: refresh() wrote it under the store's lock before
                    // reporting it. Written again now, after the lock, it could overwrite a
                    // sibling's newer rotation with a spent refresh token (§12.2).
                }
                is Command.Logout -> {
                    log.info("reauth: logged out (${command.reason.name.lowercase()})")
                    try {
                        store.clear()
                    } catch (e: Exception) {
                        log.log(Level.SEVERE, "reauth: could not clear the credential store (${e.javaClass.simpleName})")
                    }
                    try {
                        onLogout?.invoke(command.reason)
                    } catch (e: RuntimeException) {
                        log.log(Level.WARNING, "reauth: the onLogout listener threw", e)
                    }
                }
            }
        }
        rearm()
    }

    private fun tell(id: Long, event: Event) {
        val waiter = waiters[id] ?: return // its caller is gone
        if (event !is Event.Send) {
            waiter.done = true
            waiters.remove(id)
        }
        waiter.put(event)
    }

    /** One timer, always at the core's next deadline (under the lock). */
    private fun rearm() {
        val deadline = core.pollTimeout()
        if (deadline == armedAt) return
        armed?.cancel(false)
        armedAt = deadline
        armed = deadline?.let {
            timer.schedule({ quietly { apply { now -> core.handleTimeout(now) } } }, maxOf(0L, it - now()), TimeUnit.MILLISECONDS)
        }
    }

    // ----- the store (contract §12) --------------------------------------------------------

    /** What the store holds (an unreadable store is logged and read as empty). */
    private fun load(): dev.reauth.StoreRecord? =
        try {
            store.load()?.toRecord()
        } catch (e: Exception) {
            log.log(Level.SEVERE, "reauth: could not read the credential store (${e.javaClass.simpleName}: ${e.message})")
            null
        }

    private fun save(stored: StoredCredentials, what: String) {
        try {
            store.save(stored)
        } catch (e: Exception) {
            log.log(Level.SEVERE, "reauth: could not store $what (${e.javaClass.simpleName}: ${e.message})")
        }
    }

    // ----- the refresh worker (contract §12.2, §12.3) -------------------------------------

    private sealed class Outcome {
        class Succeeded(val credentials: Credentials) : Outcome()
        class Failed(val failure: RefreshFailure) : Outcome()
    }

    /** One attempt: under the store's lock, adopt or follow what the store holds, else call
     *  the server; on a rejection re-read the store once; store a success (or keep a
     *  rotation from an unusable answer) before the lock is released; then report. */
    private fun refresh(attempt: Long, refreshToken: Token) {
        val outcome = try {
            store.locked { decide(refreshToken) }
        } catch (e: Exception) {
            // After close() the worker is interrupted and the endpoint freed: nothing to say.
            if (!closed) log.log(Level.WARNING, "reauth: refresh attempt $attempt failed unexpectedly (${e.javaClass.simpleName}); transient")
            Outcome.Failed(RefreshFailure.Transient(null))
        }
        try {
            when (outcome) {
                is Outcome.Succeeded -> apply { now -> core.handleRefreshSucceeded(now, attempt, outcome.credentials) }
                is Outcome.Failed -> apply { now -> core.handleRefreshFailed(now, attempt, outcome.failure) }
            }
        } catch (e: ReauthClosedException) {
            // Closed meanwhile.
        } catch (e: ReauthException.UnknownAttempt) {
            // The core gave up on this attempt already (its deadline passed).
        } catch (e: ReauthException) {
            // Cannot happen for answers read by reauth-host (it validates what it returns);
            // said, not assumed: report the attempt transient rather than leave it waiting.
            log.warning("reauth: refresh result refused (${e.javaClass.simpleName}); transient")
            quietly { apply { now -> core.handleRefreshFailed(now, attempt, RefreshFailure.Transient(null)) } }
        }
    }

    /** Under the store's lock: what the attempt comes to. */
    private fun decide(refreshToken: Token): Outcome {
        var plan = planRefresh(refreshToken, load(), wallNow())
        var followed = false
        while (true) {
            val sent = when (val p = plan) {
                is RefreshPlan.Adopt -> {
                    log.info("reauth: adopting credentials another process rotated")
                    return succeeded(p.credentials)
                }
                is RefreshPlan.Call -> p.refreshToken
            }
            when (val answer = call(sent)) {
                is TokenAnswer.Succeeded -> {
                    answer.note?.let { log.warning("reauth: token response used despite a problem: $it") }
                    return succeeded(answer.credentials)
                }
                is TokenAnswer.Rejected -> {
                    log.warning("reauth: token endpoint refused the refresh token (${answer.error})")
                    // §12.2: a sibling may have rotated meanwhile; follow it once.
                    val next = if (followed) null else afterRejection(sent, load(), wallNow())
                    if (next == null) return Outcome.Failed(RefreshFailure.Rejected)
                    followed = true
                    plan = next
                }
                is TokenAnswer.Transient -> {
                    log.warning("reauth: refresh failed (${answer.problem}); transient")
                    answer.rotatedRefreshToken?.let { keep(it) }
                    return Outcome.Failed(RefreshFailure.Transient(answer.retryAfterMs))
                }
            }
        }
    }

    /** A success, stored before the lock is released (visible to siblings). */
    private fun succeeded(credentials: Credentials): Outcome {
        save(storedFromLogin(credentials, wallNow()).toStore(), "the new credentials")
        return Outcome.Succeeded(credentials)
    }

    /** §12.3: keeps a refresh token rotated by an unusable answer, so the retry presents it. */
    private fun keep(rotated: Token) {
        val kept = keepRotation(load(), rotated)
        if (kept != null) {
            save(kept.toStore(), "a rotated refresh token")
        } else {
            log.severe("reauth: a rotated refresh token arrived in an unusable answer and the store holds nothing to keep it with")
        }
    }

    /** One call to the token endpoint, within the refresh deadline and
     *  `maxTokenResponseBytes()` (one byte more is read, so a longer body is refused). */
    private fun call(refreshToken: Token): TokenAnswer {
        val request = try {
            val r = endpoint.refreshRequest(refreshToken)
            val contentType = r.headers.firstOrNull { it.name.equals("Content-Type", ignoreCase = true) }?.value?.expose()
            Request.Builder().url(r.url).apply {
                for (h in r.headers) header(h.name, h.value.expose())
            }.post(r.body.expose().toByteArray(Charsets.UTF_8).toRequestBody(contentType?.toMediaTypeOrNull())).build()
        } catch (e: IllegalArgumentException) {
            return transient("the token request could not be built (${e.javaClass.simpleName})")
        }
        val call = endpointClient.newCall(request)
        return try {
            call.execute().use { response ->
                val limit = maxTokenResponseBytes() + 1
                val source = response.body.source()
                val brokenOff = try {
                    source.request(limit) // at most about `limit` bytes buffered: an endless body stops here
                    false
                } catch (e: IOException) {
                    // The body broke off: what arrived is still read — a 200 that rotated
                    // keeps its rotation if it came before the cut (contract §12.3).
                    true
                }
                if (brokenOff && response.code != 200) {
                    return transient("the token endpoint's answer (${response.code}) broke off")
                }
                val body = source.buffer.readByteArray(minOf(source.buffer.size, limit))
                if (body.size.toLong() >= limit) call.cancel() // hang up: never drain the rest
                try {
                    readTokenResponse(response.code, response.header("Retry-After"), body, refreshToken, wallNow())
                } finally {
                    body.fill(0) // it holds tokens
                }
            }
        } catch (e: IOException) {
            transient("token endpoint unreachable or its answer broke off (${e.javaClass.simpleName}: ${e.message})")
        }
    }

    private fun transient(problem: String): TokenAnswer = TokenAnswer.Transient(null, problem, null)

    private companion object {
        val log: Logger = Logger.getLogger("dev.reauth")

        /** How often a call waiting for a command checks whether OkHttp cancelled it. */
        const val CANCEL_POLL_MS = 200L

        /** How many default route keys are kept (then the cache starts over). */
        const val ROUTE_CACHE = 1024

        fun StoredCredentials.toRecord() = dev.reauth.StoreRecord(
            Token(accessToken),
            refreshToken?.let { Token(it) },
            expiresAtEpochMs,
        )

        fun dev.reauth.StoreRecord.toStore() = StoredCredentials(
            accessToken.expose(),
            refreshToken?.expose(),
            expiresAtMs,
        )
    }
}
