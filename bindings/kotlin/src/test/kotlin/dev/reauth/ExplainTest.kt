package dev.reauth

import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.nio.file.Files

/** The flight recorder through the Kotlin bindings: a recording that starts mid-session
 *  replays in the Kotlin replayer (start state and causes included) and is explained,
 *  ending with why the session ended; no token text in it. */
class ExplainTest {
    private fun rejectedSession(): Coordinator {
        val core = Coordinator(Config())
        core.record(3u)
        core.login(0, Credentials("at-secret-1", "rt-secret-1"))
        val ids = (1L..4L).map { core.submit(it, RequestOptions()).id }
        val refresh = core.handleResponse(10, ids[0], 401).filterIsInstance<Command.Refresh>().single()
        core.handleResponse(11, ids[1], 401)
        core.handleRefreshFailed(20, refresh.attempt, RefreshFailure.Rejected)
        core.handleResponse(21, ids[2], 200)
        return core
    }

    @Test
    fun `a mid-session recording replays and is explained`() {
        val text = rejectedSession().use { it.traceJson() }
        assertFalse("secret" in text, text)
        val transcript = JSONObject(text)
        assertTrue(transcript.has("start"), "the recorder let inputs go: it starts mid-session")
        assertEquals(emptyList<Replay.Mismatch>(), Replay.replay(transcript))
        val explained = Explain.explain(text)
        assertTrue("rule 7.9 (Rejected) logged out" in explained, explained)
        assertTrue("Why the session ended: at t=20" in explained, explained)
        assertFalse("secret" in explained, explained)
    }

    @Test
    fun `an edited cause does not replay and is not explained`() {
        val edited = rejectedSession().use { it.traceJson() }.replace("\"7.9\"", "\"7.10\"")
        assertTrue(Replay.replay(JSONObject(edited)).isNotEmpty())
        assertThrows(ReauthException.TranscriptMismatch::class.java) { Explain.explain(edited) }
        assertThrows(ReauthException.InvalidTranscript::class.java) { Explain.explain("{\"name\": 1}") }
    }

    @Test
    fun `every vector is explained`() {
        for (path in VectorsTest.vectors()) {
            assertTrue(" inputs, t = " in Explain.explain(Files.readString(path)), path.toString())
        }
    }
}
