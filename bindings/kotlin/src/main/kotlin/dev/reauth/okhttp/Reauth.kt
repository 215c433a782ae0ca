package dev.reauth.okhttp

import dev.reauth.Config
import dev.reauth.Credentials
import dev.reauth.FailReason
import dev.reauth.LogoutReason
import dev.reauth.NativePlatforms
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
import dev.reauth.driverAbandon
import dev.reauth.driverClose
import dev.reauth.driverConfig
import dev.reauth.driverDeadline
import dev.reauth.driverForceRefresh
import dev.reauth.driverFree
import dev.reauth.driverIsLoggedIn
import dev.reauth.driverLogin
import dev.reauth.driverLogout
import dev.reauth.DEFAULT_FLIGHT_RECORDER
import dev.reauth.Recording
import dev.reauth.driverNew
import dev.reauth.driverRecord
import dev.reauth.driverTraceJson
import dev.reauth.driverRefreshFailed
import dev.reauth.driverRefreshSucceeded
import dev.reauth.driverResponseChallenged
import dev.reauth.driverStats
import dev.reauth.driverTakeMore
import dev.reauth.driverTimeout
import dev.reauth.keepRotation
import dev.reauth.maxTokenResponseBytes
import dev.reauth.planRefresh
import dev.reauth.readTokenResponse
import dev.reauth.storedFromLogin
import dev.reauth.storedToCredentials
import dev.reauth.wireFailReasons
import dev.reauth.wireLogoutReasons
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
import java.lang.ref.Cleaner
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledFuture
import java.util.concurrent.ThreadFactory
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.LockSupport
import java.util.logging.Level
import java.util.logging.Logger

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
 * Every call is submitted to the coordinator and gets its command: it goes out with
 * `Authorization: Bearer …`, its status is reported, and on a 401 it waits for the one
 * refresh and is replayed with the new token. What the host half of the contract decides
 * — which waiting call gets which command, the refresh request, the reading of the token
 * endpoint's answer (at most `maxTokenResponseBytes()`), RFC 6750 challenges, default
 * route keys and the credential-store recipe (contract §12) — is `reauth-host`'s, through
 * the generated bindings: each event is one native call that returns one number (the
 * step packed as `reauth_host::wire` documents), and a call that does not wait (the
 * steady state) needs nothing else. This class keeps what only the JVM can do: waking the
 * callers that wait, the timer and the HTTP calls. No lock is held across a native call,
 * the store, the network or [onLogout].
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
    /** How many of the coordinator's last inputs the flight recorder keeps (at least that
     *  many, fewer than twice as many; 0 turns it off). A session that ends for any reason
     *  but [logout] logs its recording at `FINE`. */
    flightRecorder: Int = DEFAULT_FLIGHT_RECORDER,
    /** Called once per session end with the reason and the flight recording
     *  ([Recording.explain] says why the session ended), after [onLogout]. */
    private val onLogoutRecorded: ((LogoutReason, Recording) -> Unit)? = null,
) : AutoCloseable {
    init {
        // Before the first native call: on a platform the jar carries no library for, this
        // throws the error that names it (dev.reauth.NativePlatforms).
        NativePlatforms.check()
        require(flightRecorder >= 0) { "flightRecorder must be 0 (off) or more, not $flightRecorder" }
    }

    /** The native host driver (the coordinator and the routing of its commands). */
    private val handle: ULong = driverNew(config).also { if (flightRecorder > 0) driverRecord(it, flightRecorder.toUInt()) }
    private val recording = flightRecorder > 0
    private val endpoint = TokenEndpoint(tokenUrl, clientId, clientSecret, basicAuth)
    private val refreshStatuses: Set<Int>
    private val endpointClient: OkHttpClient

    /** The access token this process holds (generation 0: none). */
    @Volatile private var held = Held(0L, null)

    /** Calls told to wait, and wakes that came before their call registered (ids are
     *  never reused). Its monitor is held for a map operation only. */
    private val mailbox = Any()
    private val waiting = HashMap<Long, Waiter>()
    private val early = HashMap<Long, Event>()

    /** The last calls abandoned: a wake made before the abandon but carried out after it
     *  is dropped, not kept in [early] for nobody. */
    private val abandoned = ArrayDeque<Long>()

    private val threads = ThreadFactory { r -> Thread(r, "reauth").apply { isDaemon = true } }
    private val timer = Executors.newSingleThreadScheduledExecutor(threads)
    private val workers = Executors.newCachedThreadPool(threads)
    private var armed: ScheduledFuture<*>? = null
    @Volatile private var closed = false

    /** Default route keys already computed: `defaultRoute` is a pure function, and a call
     *  across the FFI with five strings costs tens of microseconds. */
    private val routes = ConcurrentHashMap<String, Long>()

    init {
        val freeing = handle
        cleaner.register(this) { driverFree(freeing) }
        try {
            val c = driverConfig(handle)
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
                    step(driverLogin(handle, now(), restored))
                }
            }
        } catch (e: Throwable) {
            timer.shutdownNow()
            workers.shutdownNow()
            endpoint.close()
            driverClose(handle, now())
            throw e
        }
    }

    /** The interceptor to add with `OkHttpClient.Builder.addInterceptor` (an application
     *  interceptor: it may send a call twice). */
    val interceptor: Interceptor = Interceptor { chain -> intercept(chain) }

    /** Starts (or replaces) the session with credentials the app obtained. They are stored
     *  (under the store's lock) once the coordinator accepted them: refused credentials throw
     *  [ReauthException.InvalidCredentials] and change nothing, in the session or in the store. */
    fun login(credentials: Credentials) {
        val stored = storedFromLogin(credentials, wallNow()).toStore()
        // Both under the store's lock: a refresh of the new session takes it first, so it
        // never reads the store before the new credentials are in it (§12.2).
        val packed = store.locked {
            closedToo { driverLogin(handle, now(), credentials) }.also { save(stored, "the credentials") }
        }
        step(packed)
    }

    /** Ends the session: waiting calls fail `LOGGED_OUT`, the store is cleared, [onLogout] runs. */
    fun logout() = step(closedToo { driverLogout(handle, now()) })

    /** The app knows the token is bad (a push said so): the next call refreshes. */
    fun forceRefresh() = step(closedToo { driverForceRefresh(handle, now()) })

    /** The coordinator's counters (after [close], as they were then). */
    fun stats(): Stats = driverStats(handle)

    /** Whether a session exists (after [close], whether one did then). */
    val isLoggedIn: Boolean get() = driverIsLoggedIn(handle)

    /**
     * Ends the interceptor's service: every call waiting for a command (for a refresh, say)
     * throws [ReauthClosedException] at once, and so does every later call, without being
     * sent; a call on the wire gets it when its response arrives. Then stops the timer and
     * the workers. The store is kept (this is not a logout). Idempotent.
     */
    override fun close() {
        if (closed) return
        closed = true
        try {
            step(driverClose(handle, now()))
        } catch (e: ReauthException) {
            log.warning("reauth: close failed (${e.javaClass.simpleName})")
        }
        synchronized(timer) {
            armed?.cancel(false)
            armed = null
        }
        timer.shutdownNow()
        workers.shutdownNow() // interrupts a refresh on the wire
        endpoint.close()
    }

    // ----- the interceptor ---------------------------------------------------------------

    private fun intercept(chain: Interceptor.Chain): Response {
        val request = chain.request()
        val options = options(request)
        val token = held
        val packed = closedToo { NativeDriver.submit(handle, now(), options.replayable, options.refresh, options.route ?: 0L, token.generation) }
        val id = packed ushr 9
        var event = own(packed, token)
        var last: Response? = null
        try {
            while (true) {
                when (val e = event ?: waitFor(id, chain.call())) {
                    is Event.Send -> {
                        last?.close()
                        last = null
                        val sent = request.newBuilder().header("Authorization", "Bearer ${e.token}").build()
                        val response = chain.proceed(sent)
                        last = response
                        val holding = held
                        val challenges = if (response.code in refreshStatuses) response.headers("WWW-Authenticate") else emptyList()
                        val reported = closedToo {
                            if (challenges.isEmpty()) {
                                NativeDriver.response(handle, now(), id, response.code, holding.generation)
                            } else {
                                NativeDriver.generated.increment()
                                driverResponseChallenged(handle, now(), id, response.code, challenges, holding.generation)
                            }
                        }
                        event = own(reported, holding)
                    }
                    // The core completes only a request it was told the response of; §12.4:
                    // an `insufficient_scope` refusal is the caller's answer as it is.
                    Event.Complete, Event.CallersAnswer -> return last ?: throw RequestFailedException(FailReason.UNAUTHORIZED)
                    is Event.Fail -> {
                        // Rule 7.6/7.20: the caller gets the refusal the request got.
                        if (e.reason == FailReason.UNAUTHORIZED && last != null) return last
                        last?.close()
                        throw RequestFailedException(e.reason)
                    }
                    Event.Closed -> {
                        last?.close()
                        throw ReauthClosedException()
                    }
                }
            }
        } catch (e: InterruptedException) {
            last?.close()
            abandon(id)
            throw InterruptedIOException("interrupted while waiting for a token refresh").apply { initCause(e) }
        } catch (e: Throwable) {
            // A transport error (rule 7.17), the call was cancelled, or reauth was closed:
            // the request ends (nothing happens if it ended already).
            last?.close()
            abandon(id)
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

    // ----- steps: what the driver asks after each event ----------------------------------

    private class Held(val generation: Long, val token: String?)

    private sealed class Event {
        class Send(val token: String) : Event()
        object Complete : Event()
        class Fail(val reason: FailReason) : Event()
        object CallersAnswer : Event()
        object Closed : Event()
    }

    /** The one wake of a call told to wait. */
    private class Waiter(val thread: Thread) {
        @Volatile var event: Event? = null
    }

    private fun now(): Long = System.nanoTime() / 1_000_000

    private fun wallNow(): Long = System.currentTimeMillis()

    /** [block], with the driver's `Closed` as [ReauthClosedException]. */
    private inline fun <T> closedToo(block: () -> T): T =
        try {
            block()
        } catch (e: ReauthException.Closed) {
            throw ReauthClosedException()
        }

    /** Carries out a step about no call of the caller's. */
    private fun step(packed: Long) {
        if (packed and MORE != 0L) more()
        if (packed and DEADLINE != 0L) rearm()
    }

    /** Carries out the step's other half; the call's own event (`null`: it waits). */
    private fun own(packed: Long, token: Held): Event? {
        val tokens = if (packed and MORE != 0L) more() else null
        if (packed and DEADLINE != 0L) rearm()
        return when ((packed and 7L).toInt()) {
            OWN_WAIT -> null
            // The bytes carry the token when it is not the one passed in.
            OWN_SEND -> Event.Send(tokens?.second?.get(tokens.first) ?: token.token ?: missingToken())
            OWN_COMPLETE -> Event.Complete
            OWN_FAIL -> Event.Fail(failReasons[((packed ushr 3) and 15L).toInt()])
            else -> Event.CallersAnswer
        }
    }

    /** Reads this thread's step bytes and carries them out: the logout, then wakes, then
     *  refreshes. The own send's generation and the token table. */
    private fun more(): Pair<Long, Map<Long, String>> {
        NativeDriver.generated.increment()
        val buf = ByteBuffer.wrap(driverTakeMore()).order(ByteOrder.LITTLE_ENDIAN)
        val ownGeneration = buf.long
        val nTokens = buf.short.toInt() and 0xffff
        val nRefreshes = buf.short.toInt() and 0xffff
        val nWakes = buf.int
        val logout = buf.get().toInt() and 0xff
        val tokens = HashMap<Long, String>(nTokens)
        repeat(nTokens) {
            val generation = buf.long
            tokens[generation] = text(buf)
        }
        val refreshes = List(nRefreshes) { buf.long to text(buf) }
        tokens.maxByOrNull { it.key }?.let { (generation, token) ->
            if (generation > held.generation) held = Held(generation, token)
        }
        // The logout first: a call that sees its request fail finds the store cleared and
        // the app told.
        if (logout != 0) loggedOut(logoutReasons[logout - 1])
        repeat(nWakes) {
            val id = buf.long
            val kind = buf.get().toInt()
            val code = buf.get().toInt()
            val generation = buf.long
            deliver(
                id,
                when (kind) {
                    WAKE_SEND -> Event.Send(tokens[generation] ?: missingToken())
                    WAKE_COMPLETE -> Event.Complete
                    WAKE_FAIL -> Event.Fail(failReasons[code])
                    else -> Event.Closed
                },
            )
        }
        for ((attempt, refreshToken) in refreshes) {
            val token = Token(refreshToken)
            try {
                workers.execute { refresh(attempt, token) }
            } catch (e: java.util.concurrent.RejectedExecutionException) {
                token.close() // closed meanwhile
            }
        }
        return ownGeneration to tokens
    }

    /** A send without its token: the wire format promises one; said, not assumed. */
    private fun missingToken(): Nothing = throw IllegalStateException("reauth: a send came without its token (a bug)")

    private fun text(buf: ByteBuffer): String {
        val length = buf.int
        val text = String(buf.array(), buf.position(), length, Charsets.UTF_8)
        buf.position(buf.position() + length)
        return text
    }

    private fun deliver(id: Long, event: Event) {
        val waiter = synchronized(mailbox) {
            waiting.remove(id) ?: run {
                if (id !in abandoned) early[id] = event // told to wait, not registered yet
                return
            }
        }
        waiter.event = event
        LockSupport.unpark(waiter.thread)
    }

    /** The wake of a call told to wait; an [IOException] once the OkHttp call was
     *  cancelled. */
    private fun waitFor(id: Long, call: Call): Event {
        val waiter = Waiter(Thread.currentThread())
        synchronized(mailbox) {
            early.remove(id)?.let { return it }
            waiting[id] = waiter
        }
        while (true) {
            waiter.event?.let { return it }
            LockSupport.parkNanos(waiter, CANCEL_POLL_NS)
            if (Thread.interrupted()) throw InterruptedException()
            if (waiter.event == null && call.isCanceled()) throw IOException("Canceled")
        }
    }

    /** Ends a call the caller gave up on: a transport error in flight, a cancel waiting,
     *  nothing if it ended already. */
    private fun abandon(id: Long) {
        synchronized(mailbox) {
            waiting.remove(id)
            early.remove(id)
            if (abandoned.size == ABANDONED_KEPT) abandoned.removeFirst()
            abandoned.addLast(id)
        }
        try {
            NativeDriver.generated.increment()
            step(driverAbandon(handle, now(), id))
        } catch (e: ReauthException) {
            log.warning("reauth: could not end call $id (${e.javaClass.simpleName})")
        }
    }

    /** The flight recording now: the coordinator's last inputs, the commands each
     *  produced and the rule behind each, tokens replaced (no steps when it is off). */
    fun recording(): Recording = Recording(driverTraceJson(handle))

    private fun loggedOut(reason: LogoutReason) {
        log.info("reauth: logged out (${reason.name.lowercase()})")
        try {
            store.clear()
        } catch (e: Exception) {
            log.log(Level.SEVERE, "reauth: could not clear the credential store (${e.javaClass.simpleName})")
        }
        val recorded = if (recording) recording() else null
        if (recorded != null && reason != LogoutReason.REQUESTED && log.isLoggable(Level.FINE)) {
            log.fine("reauth: the session ended (${reason.name.lowercase()}); its flight recording (dev.reauth.Explain explains it): ${recorded.json}")
        }
        try {
            onLogout?.invoke(reason)
            onLogoutRecorded?.invoke(reason, recorded ?: recording())
        } catch (e: Throwable) {
            // Whatever it throws, the wakes of the calls the logout failed still go out.
            log.log(Level.WARNING, "reauth: the onLogout listener threw", e)
        }
    }

    /** One timer, at the driver's next deadline (read again whenever a step moved it). The
     *  timer's monitor is held across that one native read so that two re-arms cannot
     *  leave the older deadline armed; no call's thread takes it in the steady state. */
    private fun rearm() {
        synchronized(timer) {
            if (closed) return
            armed?.cancel(false)
            NativeDriver.generated.increment()
            val deadline = driverDeadline(handle)
            armed = deadline?.let {
                timer.schedule({ fire() }, maxOf(0L, it - now()), TimeUnit.MILLISECONDS)
            }
        }
    }

    private fun fire() {
        try {
            val packed = driverTimeout(handle, now())
            if (packed and MORE != 0L) more()
            // Armed again whether or not the deadline moved (work not due yet by a
            // millisecond of rounding leaves it where it was).
            rearm()
        } catch (e: ReauthException.Closed) {
            // Closed meanwhile.
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
                is Outcome.Succeeded -> step(driverRefreshSucceeded(handle, now(), attempt, outcome.credentials))
                is Outcome.Failed -> step(driverRefreshFailed(handle, now(), attempt, outcome.failure))
            }
        } catch (e: ReauthException.Closed) {
            // Closed meanwhile.
        } catch (e: ReauthException.UnknownAttempt) {
            // The core gave up on this attempt already (its deadline passed).
        } catch (e: ReauthException) {
            // Cannot happen for answers read by reauth-host (it validates what it returns);
            // said, not assumed: report the attempt transient rather than leave it waiting.
            log.warning("reauth: refresh result refused (${e.javaClass.simpleName}); transient")
            try {
                step(driverRefreshFailed(handle, now(), attempt, RefreshFailure.Transient(null)))
            } catch (e: ReauthException) {
                // The attempt or the driver ended meanwhile.
            }
        } finally {
            refreshToken.close()
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
        const val CANCEL_POLL_NS = 200_000_000L

        /** How many abandoned call ids the mailbox remembers. */
        const val ABANDONED_KEPT = 256

        /** Frees each driver once its `Reauth` is unreachable. */
        val cleaner: Cleaner = Cleaner.create()

        // The packed step (reauth_host::wire): bits 0-2 own kind, 3-6 fail code, 7 more,
        // 8 the deadline moved, 9.. the call's id.
        const val OWN_WAIT = 0
        const val OWN_SEND = 1
        const val OWN_COMPLETE = 2
        const val OWN_FAIL = 3
        const val MORE = 1L shl 7
        const val DEADLINE = 1L shl 8
        const val WAKE_SEND = 1
        const val WAKE_COMPLETE = 2
        const val WAKE_FAIL = 3
        // Native calls: made on first use, after a constructor's platform check (in the
        // class's initialization, a failure would leave the class unusable).
        val failReasons: List<FailReason> by lazy { wireFailReasons() }
        val logoutReasons: List<LogoutReason> by lazy { wireLogoutReasons() }

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
