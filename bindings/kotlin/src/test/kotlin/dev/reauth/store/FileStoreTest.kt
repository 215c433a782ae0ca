package dev.reauth.store

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.TimeUnit
import java.util.logging.Handler
import java.util.logging.Level
import java.util.logging.LogRecord
import java.util.logging.Logger
import kotlin.random.Random

/** Every token these tests write holds SECRET: a file holding token text is easy to find. */
private fun secret(i: Long) = StoredCredentials("at-SECRET-$i", "rt-SECRET-$i", 1_700_000_000_000 + i)

private fun names(dir: Path): List<String> = Files.list(dir).use { s -> s.map { it.fileName.toString() }.sorted().toList() }

/** The files in [dir] other than [except] that hold token text. */
private fun holdingTokenText(dir: Path, except: String): List<String> =
    names(dir).filter { it != except && "SECRET" in String(Files.readAllBytes(dir.resolve(it)), Charsets.ISO_8859_1) }

/**
 * Run in a child JVM by the kill test: saves in a loop until killed, saying when the
 * first save is done.
 */
object SaveLoop {
    @JvmStatic
    fun main(args: Array<String>) {
        val store = FileStore(Paths.get(args[0]))
        var i = 0L
        while (true) {
            store.save(secret(i))
            if (i == 0L) {
                println("saving")
                System.out.flush()
            }
            i++
        }
    }
}

class FileStoreTest {
    @Test
    fun `round trip, owner-only, atomic, re-entrant lock`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        val store = FileStore(path)
        assertNull(store.load())
        val stored = StoredCredentials("at-1", "rt-1", 1_700_000_000_500)
        store.locked { store.locked { store.save(stored) } }
        assertEquals(stored, store.load())
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(path)))
        assertEquals(listOf("credentials.json", "credentials.json.lock"), names(dir))
        assertFalse("at-1" in stored.toString() || "rt-1" in stored.toString())
        store.clear()
        assertNull(store.load())
    }

    @Test
    fun `the Python package's file reads the same`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        Files.writeString(path, """{"access_token": "at", "refresh_token": null, "expires_at": 1700000000.25}""")
        assertEquals(StoredCredentials("at", null, 1_700_000_000_250), FileStore(path).load())
        Files.writeString(path, """{"access_token": "at", "expires_at": 1700000000}""")
        assertEquals(StoredCredentials("at", null, 1_700_000_000_000), FileStore(path).load())
    }

    @Test
    fun `a foreign file is refused`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        Files.writeString(path, "not json")
        assertThrows(IllegalStateException::class.java) { FileStore(path).load() }
    }

    @Test
    fun `a leftover temporary file is removed by the next load, save or clear`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        val store = FileStore(path)
        val tmp = dir.resolve("credentials.json.tmp")
        for (operation in listOf("load", "save", "clear")) {
            store.save(secret(1))
            // What a save killed before its rename leaves: a whole or a partial write.
            Files.writeString(tmp, """{"access_token": "at-SECRET-killed", "refr""")
            when (operation) {
                "load" -> assertEquals(secret(1), store.load())
                "save" -> store.save(secret(2))
                else -> store.clear()
            }
            assertEquals(emptyList<String>(), holdingTokenText(dir, "credentials.json"), "after $operation")
            assertFalse(Files.exists(tmp), "after $operation")
        }
    }

    @Test
    fun `a symbolic link in place of the temporary file is never written through`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        val elsewhere = Files.writeString(dir.resolve("elsewhere"), "untouched")
        Files.createSymbolicLink(dir.resolve("credentials.json.tmp"), elsewhere)
        val store = FileStore(path)
        store.save(secret(1))
        assertEquals("untouched", Files.readString(elsewhere))
        assertEquals(secret(1), store.load())
        assertEquals(listOf("credentials.json", "credentials.json.lock", "elsewhere"), names(dir))
    }

    @Test
    fun `a kill during a save leaves no token text after the next operation`(@TempDir dir: Path) {
        // SIGKILL runs no cleanup: whatever a kill mid-save leaves, the store file is whole,
        // and after one more load, save or clear no other file holds token text.
        val path = dir.resolve("credentials.json")
        val store = FileStore(path)
        val java = Paths.get(System.getProperty("java.home"), "bin", "java").toString()
        val seed = System.nanoTime()
        val random = Random(seed)
        val kills = 30
        var midSave = 0
        repeat(kills) { kill ->
            val child = ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), SaveLoop::class.java.name, path.toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()
            try {
                assertEquals("saving", child.inputStream.bufferedReader().readLine())
                Thread.sleep(random.nextLong(0, 10))
            } finally {
                child.destroyForcibly() // SIGKILL on Unix
                assertTrue(child.waitFor(30, TimeUnit.SECONDS))
            }
            val others = names(dir).filter { it != "credentials.json" && it != "credentials.json.lock" }
            if (others.isNotEmpty()) midSave++
            // Atomic replace: the store file is never half a write.
            assertTrue(org.json.JSONObject(Files.readString(path)).getString("access_token").startsWith("at-SECRET-"), "seed $seed")
            val operation = when (kill % 3) {
                0 -> "load".also { store.load() }
                1 -> "save".also { store.save(secret(999_999)) }
                else -> "clear".also { store.clear() }
            }
            val leaking = holdingTokenText(dir, "credentials.json")
            assertEquals(emptyList<String>(), leaking, "kill $kill left $others; after $operation (seed $seed)")
        }
        assertTrue(midSave > 0, "no kill landed mid-save in $kills (seed $seed): the test proved nothing")
        println("$midSave of $kills kills landed mid-save")
    }

    @Test
    fun `a corrupt store names the file and the field, never the tokens`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        val store = FileStore(path)
        for ((body, message) in listOf(
            """{"access_token": "at-SECRET", "refresh_token": 5}""" to """field "refresh_token" must be a string or null, got a number""",
            """{"access_token": "at-SECRET", "refresh_token": true}""" to """field "refresh_token" must be a string or null, got a boolean""",
            """{"refresh_token": "rt-SECRET"}""" to """field "access_token" is missing""",
            """{"access_token": null, "refresh_token": "rt-SECRET"}""" to """field "access_token" must be a non-empty string, got null""",
            """{"access_token": 5, "refresh_token": "rt-SECRET"}""" to """field "access_token" must be a non-empty string, got a number""",
            """{"access_token": "", "refresh_token": "rt-SECRET"}""" to """field "access_token" must be a non-empty string, got an empty string""",
            """{"access_token": ["at-SECRET"]}""" to """field "access_token" must be a non-empty string, got an array""",
            """{"access_token": "at-SECRET", "expires_at": "rt-SECRET"}""" to """field "expires_at" must be a number or null, got a string""",
            """{"access_token": "at-SECRET", "expires_at": {"rt": "SECRET"}}""" to """field "expires_at" must be a number or null, got an object""",
            """{"access_token": "at-SECRET", "expires_at": false}""" to """field "expires_at" must be a number or null, got a boolean""",
            """{"access_token": "at-SECRET", "expires_at": 1e999}""" to """field "expires_at" must be a finite number""",
            """["at-SECRET"]""" to "not a credentials file (the JSON is an array, not an object)",
            """{"access_token": "at-SECRET"""" to "not a credentials file (invalid JSON",
        )) {
            Files.writeString(path, body)
            val e = assertThrows(IllegalStateException::class.java, { store.load() }, body)
            assertTrue(e.message!!.startsWith("$path: $message"), "${e.message} for $body")
            assertFalse("SECRET" in e.message!!, e.message)
        }
    }

    @Test
    fun `loading a store others can read warns once per mode`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        val store = FileStore(path)
        store.save(secret(1))
        val warnings = mutableListOf<String>()
        val handler = object : Handler() {
            override fun publish(record: LogRecord) {
                if (record.level == Level.WARNING) synchronized(warnings) { warnings += record.message }
            }
            override fun flush() {}
            override fun close() {}
        }
        val logger = Logger.getLogger("dev.reauth")
        logger.addHandler(handler)
        try {
            store.load() // 0600: nothing to say
            Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-r--r--"))
            store.load()
            store.load() // loaded on every refresh: said once is enough
            Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-rw----"))
            store.load() // ...until the mode changes
        } finally {
            logger.removeHandler(handler)
        }
        assertEquals(2, warnings.size, "$warnings")
        assertTrue("$path" in warnings[0] && "0644" in warnings[0] && "chmod 600" in warnings[0], warnings[0])
        assertTrue("0660" in warnings[1], warnings[1])
        assertFalse("SECRET" in warnings.joinToString())
    }

    @Test
    fun `a stored expiry survives a restart`() {
        val now = 1_700_000_000_000
        assertEquals(10_000L, StoredCredentials("at", "rt", now + 10_000).toCredentials(now).expiresInMs())
        assertEquals(0L, StoredCredentials("at", "rt", now - 10_000).toCredentials(now).expiresInMs())
    }
}
