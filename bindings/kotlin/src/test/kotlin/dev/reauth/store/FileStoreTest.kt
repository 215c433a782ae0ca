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
import java.nio.file.attribute.PosixFilePermissions

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
        assertTrue(Files.list(dir).use { s -> s.noneMatch { it.fileName.toString().startsWith(".reauth-") } })
        assertFalse("at-1" in stored.toString() || "rt-1" in stored.toString())
        store.clear()
        assertNull(store.load())
    }

    @Test
    fun `the Python package's file reads the same`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        Files.writeString(path, """{"access_token": "at", "refresh_token": null, "expires_at": 1700000000.25}""")
        assertEquals(StoredCredentials("at", null, 1_700_000_000_250), FileStore(path).load())
    }

    @Test
    fun `a foreign file is refused`(@TempDir dir: Path) {
        val path = dir.resolve("credentials.json")
        Files.writeString(path, "not json")
        assertThrows(IllegalStateException::class.java) { FileStore(path).load() }
    }

    @Test
    fun `a stored expiry survives a restart`() {
        val now = 1_700_000_000_000
        assertEquals(10_000L, StoredCredentials("at", "rt", now + 10_000).toCredentials(now).expiresInMs())
        assertEquals(0L, StoredCredentials("at", "rt", now - 10_000).toCredentials(now).expiresInMs())
    }
}
