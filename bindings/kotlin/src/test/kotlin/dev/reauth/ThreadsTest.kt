package dev.reauth

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicLong
import kotlin.random.Random

/** 32 threads apply mixed inputs to one coordinator: every request ends exactly once, the
 *  work done is bounded below, and every outcome the threads saw is one the core counted. */
class ThreadsTest {
    @Test
    fun `32 threads, every request ends exactly once`() {
        // A window wide enough that the random 401s cannot log the session out (rule 7 is
        // the model checker's and the transcripts' business; here the threads are): after an
        // ExcessiveRefresh logout every later submit fails NotLoggedIn and the lower bounds
        // on work done below would depend on the interleaving.
        val config = Config(maxRetries = 2, maxWaitMs = 3_600_000, refreshTimeoutMs = 3_600_000, refreshWindowMaxRefreshes = 10_000)
        Coordinator(config).use { core ->
            core.login(0, Credentials("at-0", "rt-0"))
            val clock = AtomicLong(1)
            val issued = AtomicLong(0)
            val submitted: MutableSet<Long> = ConcurrentHashMap.newKeySet()
            val inFlight: MutableSet<Long> = ConcurrentHashMap.newKeySet()
            val attempts: MutableSet<Long> = ConcurrentHashMap.newKeySet()
            val cancelled: MutableSet<Long> = ConcurrentHashMap.newKeySet()
            val ended = ConcurrentHashMap<Long, Int>()
            val completes = AtomicLong()
            val fails = ConcurrentHashMap<FailReason, Long>()
            // Inputs the core accepted, by kind; inputs refused because a racing thread ended
            // that request or attempt first; anything else a thread threw.
            val applied = ConcurrentHashMap<String, Long>()
            val races = AtomicLong()
            val errors = CopyOnWriteArrayList<Throwable>()

            fun record(commands: List<Command>) {
                for (c in commands) when (c) {
                    is Command.Send -> inFlight += c.id
                    is Command.Replay -> inFlight += c.id
                    is Command.Complete -> { ended.merge(c.id, 1, Int::plus); inFlight -= c.id; completes.incrementAndGet() }
                    is Command.Fail -> { ended.merge(c.id, 1, Int::plus); inFlight -= c.id; fails.merge(c.reason, 1L, Long::plus) }
                    is Command.Refresh -> attempts += c.attempt
                    is Command.StoreCredentials, is Command.Logout -> {}
                }
            }

            fun applied(kind: String) = applied.merge(kind, 1L, Long::plus)

            // A snapshot by toArray: Kotlin's toList() reads size() and then first() for a
            // one-element set, which throws when a racing thread empties it in between.
            fun <T> pick(items: Set<T>, rng: Random): T? = ArrayList(items).let { if (it.isEmpty()) null else it[rng.nextInt(it.size)] }

            val threads = (0 until 32).map { seed ->
                Thread {
                    val rng = Random(seed)
                    try {
                        repeat(300) {
                            val roll = rng.nextDouble()
                            try {
                                when {
                                    roll < 0.35 -> {
                                        val s = core.submit(clock.incrementAndGet(), RequestOptions(replayable = rng.nextDouble() < 0.8))
                                        submitted += s.id
                                        record(s.commands)
                                        applied("submit")
                                    }
                                    roll < 0.75 -> pick(inFlight, rng)?.let {
                                        record(core.handleResponse(clock.incrementAndGet(), it, listOf(200, 200, 401, 500)[rng.nextInt(4)]))
                                        applied("response")
                                    }
                                    roll < 0.85 -> pick(attempts, rng)?.let { a ->
                                        if (attempts.remove(a)) {
                                            val n = issued.incrementAndGet()
                                            record(
                                                if (rng.nextDouble() < 0.8) {
                                                    core.handleRefreshSucceeded(clock.incrementAndGet(), a, Credentials("at-$n", "rt-$n"))
                                                } else {
                                                    core.handleRefreshFailed(clock.incrementAndGet(), a, RefreshFailure.Transient(null))
                                                },
                                            )
                                            applied("refresh")
                                        }
                                    }
                                    roll < 0.9 -> pick(inFlight, rng)?.let {
                                        record(core.handleTransportError(clock.incrementAndGet(), it))
                                        applied("transport")
                                    }
                                    roll < 0.95 -> pick(submitted - ended.keys, rng)?.let {
                                        record(core.cancel(clock.incrementAndGet(), it))
                                        cancelled += it
                                        inFlight -= it
                                        applied("cancel")
                                    }
                                    else -> {
                                        record(core.handleTimeout(clock.incrementAndGet()))
                                        applied("timeout")
                                    }
                                }
                            } catch (e: ReauthException.UnknownRequest) {
                                races.incrementAndGet() // a racing thread ended that request first
                            } catch (e: ReauthException.NotInFlight) {
                                races.incrementAndGet() // it waits for a refresh since its 401
                            } catch (e: ReauthException.UnknownAttempt) {
                                races.incrementAndGet() // that attempt ended already
                            }
                        }
                    } catch (e: Throwable) {
                        errors += e // any other error fails the test
                    }
                }
            }
            threads.forEach { it.start() }
            threads.forEach { it.join() }
            assertEquals(0, errors.size, "${errors.size} inputs threw, first ${errors.take(3)}")

            // Settle: refreshes succeed, everything in flight answers 200, time passes.
            var step = 0
            while (core.openRequests() > 0 && step < 10_000) {
                val now = clock.incrementAndGet() + if (step % 2 == 1) 1_000_000 else 0
                val attempt = attempts.firstOrNull()
                val flying = inFlight.minOrNull()
                when {
                    attempt != null -> { attempts -= attempt; record(core.handleRefreshSucceeded(now, attempt, Credentials("at-s$step", "rt-s$step"))) }
                    flying != null -> try {
                        record(core.handleResponse(now, flying, 200))
                    } catch (e: ReauthException.UnknownRequest) {
                        inFlight -= flying // ended (or cancelled) while a racing batch re-listed it
                    } catch (e: ReauthException.NotInFlight) {
                        inFlight -= flying // waiting since its 401: its Replay lists it again
                    }
                    else -> record(core.handleTimeout(now))
                }
                step++
            }
            assertEquals(0L, core.openRequests(), "settled within $step steps")

            // Work was done: every kind of input was applied many times across the threads.
            val summary = "applied $applied, ${races.get()} races, ${submitted.size} submitted, ${completes.get()} completed, " +
                "${cancelled.size} cancelled, fails $fails"
            println("threads: $summary")
            assertTrue(submitted.size >= 2_000, summary)
            assertTrue(completes.get() >= 500, summary)
            for ((kind, least) in listOf("response" to 500L, "refresh" to 5L, "transport" to 30L, "cancel" to 100L, "timeout" to 100L)) {
                assertTrue((applied[kind] ?: 0) >= least, "$kind: $summary")
            }

            // Every request ended exactly once: a terminal command, or a cancel that found it open.
            assertTrue(ended.values.all { it == 1 }, "a request ended twice: $summary")
            assertEquals(emptySet<Long>(), ended.keys.intersect(cancelled), "a cancelled request got a terminal command")
            assertEquals(submitted.toSet(), ended.keys + cancelled, "a request was lost")

            // What the threads saw is what the core counted.
            val stats = core.stats()
            val f = stats.failed
            assertEquals(submitted.size.toLong(), stats.submitted)
            assertEquals(cancelled.size.toLong(), stats.cancelled)
            assertEquals(completes.get(), stats.completed)
            val counted = mapOf(
                FailReason.NOT_LOGGED_IN to f.notLoggedIn, FailReason.LOGGED_OUT to f.loggedOut,
                FailReason.REFRESH_REJECTED to f.refreshRejected, FailReason.REFRESH_UNAVAILABLE to f.refreshUnavailable,
                FailReason.EXCESSIVE_REFRESH to f.excessiveRefresh, FailReason.UNAUTHORIZED to f.unauthorized,
                FailReason.QUEUE_FULL to f.queueFull, FailReason.WAIT_TIMEOUT to f.waitTimeout, FailReason.TRANSPORT to f.transport,
            )
            assertEquals(FailReason.entries.toSet(), counted.keys, "every reason compared")
            for ((reason, n) in counted) assertEquals(fails[reason] ?: 0L, n, "$reason: $summary")
            assertEquals(ended.size.toLong(), stats.completed + counted.values.sum())
            assertTrue(fails.getOrDefault(FailReason.TRANSPORT, 0L) > 0, "transport errors ended requests: $summary")
        }
    }
}
