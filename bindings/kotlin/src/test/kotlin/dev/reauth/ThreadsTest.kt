package dev.reauth

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import kotlin.random.Random

/** 32 threads apply mixed inputs to one coordinator: every request ends exactly once. */
class ThreadsTest {
    @Test
    fun `32 threads, every request ends exactly once`() {
        Coordinator(Config(maxRetries = 2, maxWaitMs = 3_600_000, refreshTimeoutMs = 3_600_000)).use { core ->
            core.login(0, Credentials("at-0", "rt-0"))
            val clock = AtomicLong(1)
            val issued = AtomicLong(0)
            val submitted: MutableSet<Long> = ConcurrentHashMap.newKeySet()
            val inFlight: MutableSet<Long> = ConcurrentHashMap.newKeySet()
            val attempts: MutableSet<Long> = ConcurrentHashMap.newKeySet()
            val cancelled: MutableSet<Long> = ConcurrentHashMap.newKeySet()
            val ended = ConcurrentHashMap<Long, Int>()

            fun record(commands: List<Command>) {
                for (c in commands) when (c) {
                    is Command.Send -> inFlight += c.id
                    is Command.Replay -> inFlight += c.id
                    is Command.Complete -> { ended.merge(c.id, 1, Int::plus); inFlight -= c.id }
                    is Command.Fail -> { ended.merge(c.id, 1, Int::plus); inFlight -= c.id }
                    is Command.Refresh -> attempts += c.attempt
                    else -> {}
                }
            }

            fun <T> pick(items: Set<T>, rng: Random): T? = items.toList().let { if (it.isEmpty()) null else it[rng.nextInt(it.size)] }

            val threads = (0 until 32).map { seed ->
                Thread {
                    val rng = Random(seed)
                    repeat(300) {
                        val roll = rng.nextDouble()
                        try {
                            when {
                                roll < 0.35 -> {
                                    val s = core.submit(clock.incrementAndGet(), RequestOptions(replayable = rng.nextDouble() < 0.8))
                                    submitted += s.id
                                    record(s.commands)
                                }
                                roll < 0.75 -> pick(inFlight, rng)?.let {
                                    record(core.handleResponse(clock.incrementAndGet(), it, listOf(200, 200, 401, 500)[rng.nextInt(4)]))
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
                                    }
                                }
                                roll < 0.9 -> pick(inFlight, rng)?.let { record(core.handleTransportError(clock.incrementAndGet(), it)) }
                                roll < 0.95 -> pick(submitted - ended.keys, rng)?.let {
                                    core.cancel(clock.incrementAndGet(), it)
                                    cancelled += it
                                    inFlight -= it
                                }
                                else -> record(core.handleTimeout(clock.incrementAndGet()))
                            }
                        } catch (e: ReauthException) {
                            // A racing thread ended that request or attempt first: refused, no change.
                        }
                    }
                }
            }
            threads.forEach { it.start() }
            threads.forEach { it.join() }

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
                    } catch (e: ReauthException) {
                        inFlight -= flying // cancelled, or waiting since its 401 (its Replay lists it again)
                    }
                    else -> record(core.handleTimeout(now))
                }
                step++
            }
            assertEquals(0L, core.openRequests())
            assertTrue(ended.values.all { it == 1 }, "a request ended twice")
            assertEquals(submitted.toSet(), ended.keys + cancelled, "a request was lost")
            val stats = core.stats()
            assertEquals(submitted.size.toLong(), stats.submitted)
            val f = stats.failed
            val failed = f.notLoggedIn + f.loggedOut + f.refreshRejected + f.refreshUnavailable + f.excessiveRefresh +
                f.unauthorized + f.queueFull + f.waitTimeout + f.transport
            assertEquals(ended.size.toLong(), stats.completed + failed)
        }
    }
}
