package dev.reauth

import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory
import java.nio.file.Files
import java.nio.file.Path

/** Every conformance transcript, replayed through the Kotlin bindings, gives the batches
 *  the Rust core gives. */
class VectorsTest {
    @Test
    fun `there are transcripts`() {
        assertTrue(vectors().size >= 30)
    }

    @TestFactory
    fun `every transcript replays identically`(): List<DynamicTest> = vectors().map { path ->
        DynamicTest.dynamicTest(path.fileName.toString()) {
            val mismatches = Replay.replay(JSONObject(Files.readString(path)))
            assertEquals(emptyList<Replay.Mismatch>(), mismatches, mismatches.joinToString(""))
        }
    }

    @Test
    fun `a tampered transcript is reported with expected and actual`() {
        val transcript = JSONObject(Files.readString(root().resolve("tests/vectors/rule-05-current-401-starts-one-refresh.json")))
        val steps = transcript.getJSONArray("steps")
        for (i in 0 until steps.length()) {
            val expect = steps.getJSONObject(i).optJSONArray("expect") ?: continue
            for (j in 0 until expect.length()) {
                val c = expect.getJSONObject(j)
                if (c.getString("type") == "refresh") c.put("refresh_token", "rt-wrong")
            }
        }
        val mismatches = Replay.replay(transcript)
        assertEquals(1, mismatches.size)
        val shown = mismatches.single().toString()
        assertTrue("rt-wrong" in shown && "rt-1" in shown && "expected" in shown && "actual" in shown, shown)
    }

    companion object {
        fun root(): Path = Path.of(System.getProperty("reauth.root", "../..")).toAbsolutePath().normalize()

        fun vectors(): List<Path> = Files.list(root().resolve("tests/vectors")).use { s ->
            s.filter { it.toString().endsWith(".json") }.sorted().toList()
        }
    }
}
