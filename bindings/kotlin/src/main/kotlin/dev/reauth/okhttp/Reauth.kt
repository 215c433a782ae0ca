package dev.reauth.okhttp

import dev.reauth.Command
import dev.reauth.Config
import dev.reauth.Coordinator
import dev.reauth.Credentials
import dev.reauth.FailReason
import dev.reauth.LogoutReason
import dev.reauth.ReauthException
import dev.reauth.RefreshFailure
import dev.reauth.RequestOptions
import dev.reauth.Stats
import dev.reauth.store.CredentialStore
import dev.reauth.store.MemoryStore
import dev.reauth.store.StoredCredentials
import okhttp3.FormBody
import okhttp3.Interceptor
import okhttp3.OkHttpClient
import okhttp3.Request
import okhttp3.Response
import java.io.IOException
import java.io.InterruptedIOException
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

/** What a token-endpoint call came to: credentials, or a failure. */
sealed class RefreshOutcome {
    class Succeeded(val credentials: Credentials) : RefreshOutcome()
    class Failed(val failure: RefreshFailure) : RefreshOutcome()
}

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
 * refresh and is replayed with the new token. The refresh runs on [tokenClient], its own
 * `OkHttpClient`, on a worker thread — never through the app's client, so it cannot
 * deadlock on that client's dispatcher limits (the classic `Authenticator` deadlock). The
 * token endpoint is read as RFC 6749 §5.2 says: 400/401 with an OAuth `error` → rejected
 * (the session ends); 5xx, 429, other statuses, I/O errors and malformed bodies →
 * transient, with `Retry-After`. One-shot and duplex bodies are submitted non-replayable.
 * A failed call throws [RequestFailedException], except `Unauthorized`, which returns
 * the 401/403 response itself, and transport errors, which are rethrown as they were.
 */
class Reauth(
    private val tokenUrl: String,
    private val clientId: String,
    private val clientSecret: String? = null,
    credentials: Credentials? = null,
    private val store: CredentialStore = MemoryStore(),
    config: Config = Config(),
    private val onLogout: ((LogoutReason) -> Unit)? = null,
    /** The client the refresh runs on. Never the authenticated one; and it must not
     *  retry a POST by itself (OkHttp's `retryOnConnectionFailure` would send a refresh
     *  token again after a lost response — a reuse the server punishes by revoking the
     *  family), so the default switches that off. */
    val tokenClient: OkHttpClient = OkHttpClient.Builder().retryOnConnectionFailure(false).build(),
) : AutoCloseable {
    private val core = Coordinator(config)
    private val lock = ReentrantLock()
    private val waiters = HashMap<Long, Waiter>()
    private val threads = ThreadFactory { r -> Thread(r, "reauth").apply { isDaemon = true } }
    private val timer = Executors.newSingleThreadScheduledExecutor(threads)
    private val workers = Executors.newCachedThreadPool(threads)
    private var armed: ScheduledFuture<*>? = null
    private var armedAt: Long? = null

    init {
        if (credentials != null) {
            saveCredentials(credentials)
            apply { now -> core.login(now, credentials) }
        } else {
            store.load()?.let { stored -> apply { now -> core.login(now, stored.toCredentials()) } }
        }
    }

    /** The interceptor to add with `OkHttpClient.Builder.addInterceptor` (an application
     *  interceptor: it may send a call twice). */
    val interceptor: Interceptor = Interceptor { chain -> intercept(chain) }

    /** Starts (or replaces) the session with credentials the app obtained. */
    fun login(credentials: Credentials) = lock.withLock {
        saveCredentials(credentials)
        apply { now -> core.login(now, credentials) }
    }

    /** Ends the session: waiting calls fail `LOGGED_OUT`, the store is cleared, [onLogout] runs. */
    fun logout() = apply { now -> core.logout(now) }

    /** The app knows the token is bad (a push said so): the next call refreshes. */
    fun forceRefresh() = apply { now -> core.forceRefresh(now) }

    /** The coordinator's counters. */
    fun stats(): Stats = core.stats()

    val isLoggedIn: Boolean get() = core.isLoggedIn()

    /** Stops the timer and the workers and frees the coordinator. */
    override fun close() {
        timer.shutdownNow()
        workers.shutdownNow()
        core.close()
    }

    // ----- the interceptor ---------------------------------------------------------------

    private fun intercept(chain: Interceptor.Chain): Response {
        val request = chain.request()
        val body = request.body
        val replayable = body == null || !(body.isOneShot() || body.isDuplex())
        val waiter = submit(RequestOptions(replayable = replayable))
        var last: Response? = null
        try {
            while (true) {
                when (val event = waiter.take()) {
                    is Event.Send -> {
                        last?.close()
                        last = null
                        val sent = request.newBuilder().header("Authorization", "Bearer ${event.token}").build()
                        val response = chain.proceed(sent)
                        last = response
                        apply { now -> core.handleResponse(now, waiter.id, response.code) }
                    }
                    Event.Complete -> return last!!
                    is Event.Fail -> {
                        if (event.reason == FailReason.UNAUTHORIZED && last != null) return last
                        last?.close()
                        throw RequestFailedException(event.reason)
                    }
                }
            }
        } catch (e: InterruptedException) {
            last?.close()
            abandon(waiter)
            throw InterruptedIOException("interrupted while waiting for a token refresh").apply { initCause(e) }
        } catch (e: Throwable) {
            // A transport error (rule 7.17) or the call was cancelled: the request ends.
            abandon(waiter)
            throw e
        }
    }

    // ----- routing: every core call and its batch under one lock --------------------------

    private sealed class Event {
        class Send(val token: String) : Event()
        object Complete : Event()
        class Fail(val reason: FailReason) : Event()
    }

    private class Waiter(val id: Long) {
        private val events = LinkedBlockingQueue<Event>()
        @Volatile var done = false
        fun put(event: Event) = events.put(event)
        fun take(): Event = events.take()
    }

    private fun now(): Long = System.nanoTime() / 1_000_000

    private fun submit(options: RequestOptions): Waiter = lock.withLock {
        val now = now()
        val submitted = core.submit(now, options)
        // Registered before its batch is routed, under the lock every core call takes.
        val waiter = Waiter(submitted.id)
        waiters[submitted.id] = waiter
        route(submitted.commands, now)
        waiter
    }

    private fun abandon(waiter: Waiter) = lock.withLock {
        if (!waiter.done) {
            waiter.done = true
            quietly {
                if (core.isInFlight(waiter.id)) {
                    apply { now -> core.handleTransportError(now, waiter.id) }
                } else {
                    apply { now -> core.cancel(now, waiter.id) }
                }
            }
        }
        waiters.remove(waiter.id)
    }

    private fun apply(input: (Long) -> List<Command>) = lock.withLock {
        val now = now()
        route(input(now), now)
    }

    private inline fun quietly(block: () -> Unit) {
        try {
            block()
        } catch (e: ReauthException) {
            // The request or attempt already ended: refused, nothing changed.
        }
    }

    private fun route(commands: List<Command>, now: Long) {
        for (command in commands) {
            when (command) {
                is Command.Send -> tell(command.id, Event.Send(command.accessToken.expose()))
                is Command.Replay -> tell(command.id, Event.Send(command.accessToken.expose()))
                is Command.Complete -> tell(command.id, Event.Complete)
                is Command.Fail -> tell(command.id, Event.Fail(command.reason))
                is Command.Refresh -> {
                    val attempt = command.attempt
                    val refreshToken = command.refreshToken.expose()
                    workers.execute { refresh(attempt, refreshToken) }
                }
                is Command.StoreCredentials -> store.save(
                    StoredCredentials(
                        command.accessToken.expose(),
                        command.refreshToken?.expose(),
                        command.expiresAt?.let { System.currentTimeMillis() + (it - now) },
                    ),
                )
                is Command.Logout -> {
                    log.info("reauth: logged out (${command.reason.name.lowercase()})")
                    store.clear()
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

    /** One timer, always at the core's next deadline. */
    private fun rearm() {
        val deadline = core.pollTimeout()
        if (deadline == armedAt) return
        armed?.cancel(false)
        armedAt = deadline
        armed = deadline?.let {
            timer.schedule({ apply { now -> core.handleTimeout(now) } }, maxOf(0L, it - now()), TimeUnit.MILLISECONDS)
        }
    }

    private fun saveCredentials(credentials: Credentials) {
        store.save(
            StoredCredentials(
                credentials.accessToken().expose(),
                credentials.refreshToken()?.expose(),
                credentials.expiresInMs()?.let { System.currentTimeMillis() + it },
            ),
        )
    }

    // ----- the refresh worker (contract §12.2) --------------------------------------------

    private fun refresh(attempt: Long, refreshToken: String) {
        val outcome = try {
            store.locked {
                var outcome = sibling(refreshToken) ?: callTokenEndpoint(refreshToken)
                if (outcome is RefreshOutcome.Failed && outcome.failure is RefreshFailure.Rejected) {
                    outcome = sibling(refreshToken) ?: outcome
                }
                if (outcome is RefreshOutcome.Succeeded) {
                    saveCredentials(outcome.credentials) // visible to siblings before unlocking
                }
                outcome
            }
        } catch (e: Exception) {
            log.log(Level.WARNING, "reauth: refresh attempt $attempt failed unexpectedly; transient", e)
            RefreshOutcome.Failed(RefreshFailure.Transient(null))
        }
        quietly {
            when (outcome) {
                is RefreshOutcome.Succeeded -> apply { now -> core.handleRefreshSucceeded(now, attempt, outcome.credentials) }
                is RefreshOutcome.Failed -> apply { now -> core.handleRefreshFailed(now, attempt, outcome.failure) }
            }
        }
    }

    private fun sibling(refreshToken: String): RefreshOutcome? {
        val stored = store.load() ?: return null
        if (stored.refreshToken == null || stored.refreshToken == refreshToken) return null
        log.info("reauth: adopting credentials another process rotated")
        return RefreshOutcome.Succeeded(stored.toCredentials())
    }

    private fun callTokenEndpoint(refreshToken: String): RefreshOutcome {
        val form = FormBody.Builder()
            .add("grant_type", "refresh_token")
            .add("refresh_token", refreshToken)
            .add("client_id", clientId)
            .apply { clientSecret?.let { add("client_secret", it) } }
            .build()
        val request = Request.Builder().url(tokenUrl).post(form).header("Accept", "application/json").build()
        return try {
            tokenClient.newCall(request).execute().use { response ->
                TokenResponses.classify(response.code, response.header("Retry-After"), response.body.string())
            }
        } catch (e: IOException) {
            log.warning("reauth: token endpoint unreachable (${e.javaClass.simpleName}); transient")
            RefreshOutcome.Failed(RefreshFailure.Transient(null))
        }
    }

    private companion object {
        val log: Logger = Logger.getLogger("dev.reauth")
    }
}
