package dev.reauth.bench

import dev.reauth.Credentials
import dev.reauth.okhttp.EndToEndTest.TokenServer
import dev.reauth.okhttp.Reauth
import okhttp3.Authenticator
import okhttp3.Interceptor
import okhttp3.OkHttpClient
import okhttp3.Request
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.condition.EnabledIfSystemProperty
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

/**
 * The OkHttp interceptor next to plain OkHttp and to the peer's auth layer (an
 * `Authenticator` plus an interceptor that sets the header) on loopback against the
 * reference server with a long-lived token: interleaved rounds, median ratios to plain
 * OkHttp in the same round. For reading (scripts/bench-adapters runs it with
 * `-Dreauth.bench=true`); never a pass/fail on time.
 */
@EnabledIfSystemProperty(named = "reauth.bench", matches = "true")
class AdapterBench {
    @Test
    fun `interceptor next to plain OkHttp`() {
        val requests = System.getProperty("reauth.bench.requests", "2000").toInt()
        val rounds = System.getProperty("reauth.bench.rounds", "9").toInt()
        val threads = System.getProperty("reauth.bench.threads", "32").toInt()
        TokenServer("--access-ttl-ms", "3600000").use { server ->
            val token = server.login()
            val access = token.getString("access_token")
            val reauth = Reauth(
                "${server.url}/oauth/token", "bench",
                credentials = Credentials(access, token.getString("refresh_token"), token.getLong("expires_in") * 1000),
            )
            val base = OkHttpClient.Builder().build()
            val clients = linkedMapOf(
                "plain OkHttp" to base.newBuilder()
                    .addInterceptor { it.proceed(it.request().newBuilder().header("Authorization", "Bearer $access").build()) }
                    .build(),
                "reauth interceptor" to base.newBuilder().addInterceptor(reauth.interceptor).build(),
                "Authenticator + interceptor" to base.newBuilder()
                    .addInterceptor(Peer(access))
                    .authenticator(Authenticator { _, _ -> null })
                    .build(),
            )
            val url = "${server.url}/api/items"
            for (client in clients.values) run(client, url, 500, 1) // warm: connections, JIT
            println("OkHttp ${okhttp3.OkHttp.VERSION}, $requests requests x $rounds interleaved rounds; median ratio to plain OkHttp in the same round")
            println("| mode | client | µs/request | ratio |")
            println("| --- | --- | ---: | ---: |")
            for (t in listOf(1, threads)) {
                val times = clients.keys.associateWith { mutableListOf<Double>() }
                val names = clients.keys.toList()
                repeat(rounds) { r ->
                    for (i in names.indices) {
                        val name = names[(i + r) % names.size]
                        times.getValue(name) += run(clients.getValue(name), url, requests, t)
                    }
                }
                val mode = if (t == 1) "sequential" else "$t threads"
                val plain = times.getValue("plain OkHttp")
                for (name in names) {
                    val ratios = times.getValue(name).zip(plain).map { (a, b) -> a / b }
                    val us = median(times.getValue(name)) / requests * 1e6
                    println("| $mode | $name | %.0f | %.2f× |".format(us, median(ratios)))
                }
            }
            check(reauth.stats().refreshAttempts == 0L) { "a long-lived token: no refresh" }
            loadAndStorm(server, clients.getValue("plain OkHttp"), clients.getValue("reauth interceptor"), url)
            reauth.close()
        }
    }

    /** The demo's load — 64 threads for 2 s on a fixed token: requests/s of plain OkHttp
     *  and of the interceptor (interleaved, twice each) — then a 401 storm under that load:
     *  every access token revoked at once, and the time until every worker succeeded again,
     *  next to the round trip under the load. */
    private fun loadAndStorm(server: TokenServer, plain: OkHttpClient, reauth: OkHttpClient, url: String, workers: Int = 64) {
        fun load(client: OkHttpClient): Double {
            val stop = java.util.concurrent.atomic.AtomicBoolean(false)
            val done = java.util.concurrent.atomic.LongAdder()
            val pool = Executors.newFixedThreadPool(workers)
            repeat(workers) { w ->
                pool.submit {
                    while (!stop.get()) {
                        some(client, "$url/${w % 16}", 1)
                        done.increment()
                    }
                }
            }
            Thread.sleep(2_000)
            stop.set(true)
            pool.shutdown()
            check(pool.awaitTermination(30, TimeUnit.SECONDS))
            return done.sum() / 2.0
        }
        val plainRates = mutableListOf<Double>()
        val reauthRates = mutableListOf<Double>()
        repeat(2) {
            plainRates += load(plain)
            reauthRates += load(reauth)
        }
        val p = median(plainRates)
        val r = median(reauthRates)
        println("\n$workers threads for 2 s, a fixed token: plain OkHttp %.0f requests/s, reauth interceptor %.0f requests/s (%.2fx fewer)".format(p, r, p / r))

        // Twice: the first refresh of this JVM also loads and compiles the refresh path.
        for (storm in 1..2) {
            val stop = java.util.concurrent.atomic.AtomicBoolean(false)
            val revokedAt = java.util.concurrent.atomic.AtomicLong(Long.MAX_VALUE)
            val recovered = java.util.concurrent.atomic.AtomicLongArray(workers)
            val pool = Executors.newFixedThreadPool(workers)
            repeat(workers) { w ->
                pool.submit {
                    while (!stop.get()) {
                        val began = System.nanoTime()
                        some(reauth, "$url/${w % 16}", 1)
                        if (began >= revokedAt.get() && recovered.get(w) == 0L) recovered.set(w, System.nanoTime())
                    }
                }
            }
            Thread.sleep(500)
            revokedAt.set(System.nanoTime())
            server.revokeAccess()
            Thread.sleep(3_000)
            stop.set(true)
            pool.shutdown()
            check(pool.awaitTermination(30, TimeUnit.SECONDS))
            val all = (0 until workers).all { recovered.get(it) != 0L }
            val last = (0 until workers).maxOf { recovered.get(it) } - revokedAt.get()
            println(
                "401 storm $storm under $workers threads: every worker succeeded again %.1f ms after the revocation (%s); a request round trip under this load: %.2f ms"
                    .format(last / 1e6, if (all) "all recovered" else "NOT all recovered", workers / r * 1000),
            )
        }
    }

    /** Seconds for [requests] GETs on [threads] threads. */
    private fun run(client: OkHttpClient, url: String, requests: Int, threads: Int): Double {
        val started = System.nanoTime()
        if (threads == 1) {
            some(client, url, requests)
        } else {
            val pool = Executors.newFixedThreadPool(threads)
            val done = (0 until threads).map { pool.submit { some(client, url, requests / threads) } }
            done.forEach { it.get(120, TimeUnit.SECONDS) }
            pool.shutdown()
        }
        return (System.nanoTime() - started) / 1e9
    }

    private fun some(client: OkHttpClient, url: String, n: Int) {
        repeat(n) { i ->
            client.newCall(Request.Builder().url("$url/${i % 16}").build()).execute().use {
                check(it.code == 200) { "unexpected ${it.code}" }
                it.body.bytes()
            }
        }
    }

    private fun median(values: List<Double>): Double = values.sorted().let { it[it.size / 2] }

    /** The usual hand-written layer: a header from the token in memory (an `Authenticator`
     *  would refresh on a 401; with a long-lived token it never runs). */
    private class Peer(@Volatile var token: String) : Interceptor {
        override fun intercept(chain: Interceptor.Chain) =
            chain.proceed(chain.request().newBuilder().header("Authorization", "Bearer $token").build())
    }
}
