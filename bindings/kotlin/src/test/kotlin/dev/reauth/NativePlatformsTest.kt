package dev.reauth

import com.sun.jna.Platform
import dev.reauth.okhttp.Reauth
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** On a platform the jar carries no library for, the first native call throws an error
 *  that names the platform, the platforms carried and what to do; a library supplied
 *  from outside the jar (`jna.library.path`) still loads. */
class NativePlatformsTest {
    private val jar = listOf("linux-x86-64", "linux-aarch64")
    private val missing = UnsatisfiedLinkError("Unable to load library 'reauth_uniffi'")

    private fun assertExplains(e: NativeLibraryError, platform: String, vararg words: String) {
        val message = e.message!!
        assertEquals(platform, e.platform)
        assertEquals(jar, e.carried)
        assertSame(missing, e.cause)
        for (word in words) assertTrue(word in message, "\"$word\" not in: $message")
    }

    @Test
    fun `a platform the jar lacks is named, with the platforms carried and what to do`() {
        val e = assertThrows(NativeLibraryError::class.java) {
            NativePlatforms.check("darwin-aarch64", jar) { throw missing }
        }
        assertExplains(
            e, "darwin-aarch64",
            "not for darwin-aarch64", "linux-x86-64, linux-aarch64",
            "cargo build --release -p reauth-uniffi", "libreauth_uniffi.dylib", "-Djna.library.path=",
        )
        val windows = assertThrows(NativeLibraryError::class.java) {
            NativePlatforms.check("win32-x86-64", jar) { throw missing }
        }
        assertTrue("reauth_uniffi.dll" in windows.message!!, windows.message)
    }

    @Test
    fun `a library supplied from outside the jar serves a platform it lacks`() {
        var loads = 0
        NativePlatforms.check("freebsd-x86-64", jar) { loads++ } // as with -Djna.library.path
        assertEquals(1, loads)
    }

    @Test
    fun `a carried library that does not load is named too`() {
        val e = assertThrows(NativeLibraryError::class.java) {
            NativePlatforms.check("linux-aarch64", jar) { throw missing }
        }
        assertExplains(
            e, "linux-aarch64",
            "carries for linux-aarch64", "Unable to load library", // JNA's own words: why it did not load
            "musl", "-Djna.library.path=",
        )
    }

    @Test
    fun `the jar lists this platform, and its library loads`() {
        assertTrue(Platform.RESOURCE_PREFIX in NativePlatforms.carried, "${NativePlatforms.carried}")
        assertEquals(Platform.RESOURCE_PREFIX, NativePlatforms.current)
        assertTrue(NativePlatforms.carried.all { javaClass.classLoader.getResource("$it/libreauth_uniffi.so") != null })
        NativePlatforms.check()
    }

    @Test
    fun `the adapter and the explainer check before their first native call`() {
        val (platform, loader) = NativePlatforms.platform to NativePlatforms.loader
        NativePlatforms.platform = { "darwin-aarch64" }
        NativePlatforms.loader = { throw missing }
        NativePlatforms.recheck()
        try {
            for (call in listOf<() -> Any>(
                { Reauth("http://127.0.0.1:9/token", "app") },
                { Explain.explain("{}") },
                { Recording("{}").explain() },
            )) {
                val e = assertThrows(NativeLibraryError::class.java) { call() }
                assertEquals("darwin-aarch64", e.platform)
            }
        } finally {
            NativePlatforms.platform = platform
            NativePlatforms.loader = loader
        }
        NativePlatforms.check()
    }
}
