package dev.reauth

import com.sun.jna.Library
import com.sun.jna.NativeLibrary
import com.sun.jna.Platform
import java.util.Properties

/**
 * The native library (`libreauth_uniffi`) could not be loaded: [platform] is this JVM's
 * platform as JNA names it, [carried] the platforms whose library the jar carries, and
 * the message says what to do. An [UnsatisfiedLinkError], as JNA's own; its cause is
 * JNA's error.
 */
class NativeLibraryError internal constructor(
    val platform: String,
    val carried: List<String>,
    message: String,
    cause: Throwable,
) : UnsatisfiedLinkError(message) {
    init {
        initCause(cause)
    }
}

/**
 * The platforms whose native library this jar carries, and the check that runs before
 * the first native call.
 *
 * The OkHttp adapter ([dev.reauth.okhttp.Reauth]), [Explain] and [Recording.explain] call
 * [check] first, so that on a platform the jar lacks the first call throws a
 * [NativeLibraryError] that names the platform, the platforms carried, and how to build
 * the library and point the JVM at it. Code that starts with the generated API
 * ([Coordinator] and the other bindings) SHOULD call [check] first for the same message;
 * without it, JNA's `UnsatisfiedLinkError` is thrown on first use.
 *
 * A library supplied from outside the jar always wins: `-Djna.library.path=DIR` (or the
 * system's library path, or `-Duniffi.component.reauth_uniffi.libraryOverride=PATH`)
 * serves any platform, carried or not — it must be built from the same reauth version
 * (the bindings compare checksums when they load it).
 */
object NativePlatforms {
    /** JNA resource prefixes (`linux-x86-64`, `linux-aarch64`, …) whose library this jar
     *  carries, from `dev/reauth/native.properties` (written by the build); empty when
     *  the classes run without it. */
    @JvmStatic
    val carried: List<String>

    /** The reauth version the libraries were built from (`null` without the list). */
    @JvmStatic
    val version: String?

    /** The oldest glibc the jar's Linux libraries run on (`null` without the list). */
    @JvmStatic
    val glibc: String?

    init {
        val properties = Properties()
        NativePlatforms::class.java.getResourceAsStream("native.properties")?.use { properties.load(it) }
        carried = properties.getProperty("platforms", "").split(' ').filter { it.isNotEmpty() }
        version = properties.getProperty("version")
        glibc = properties.getProperty("glibc")?.takeIf { it.isNotEmpty() }
    }

    /** This JVM's platform, in JNA's resource-prefix form (`darwin-aarch64`,
     *  `win32-x86-64`, `linux-x86-64`, …). */
    @JvmStatic
    val current: String
        get() = Platform.RESOURCE_PREFIX

    @Volatile
    private var loaded = false

    /** The platform and the loader [check] uses (the tests change them to check the
     *  callers). */
    @Volatile
    internal var platform: () -> String = { current }

    @Volatile
    internal var loader: () -> Unit = ::load

    /** The next [check] checks again (for the tests). */
    internal fun recheck() {
        loaded = false
    }

    /**
     * Loads the native library, or throws [NativeLibraryError] saying why not: on a
     * platform the jar does not carry, that it does not and how to supply the library.
     * Once it loaded, a call costs one volatile read.
     */
    @JvmStatic
    fun check() {
        if (loaded) return
        check(platform(), carried, loader)
        loaded = true
    }

    /**
     * The check for [platform] given the [carried] list: runs [load] (the library is
     * loaded the way the generated bindings load it), and on a failure throws a
     * [NativeLibraryError] that explains it. A library supplied from outside the jar
     * loads, so it passes whatever [carried] says.
     */
    internal fun check(platform: String, carried: List<String>, load: () -> Unit) {
        try {
            load()
        } catch (e: LinkageError) {
            throw NativeLibraryError(platform, carried, explain(platform, carried, e), e)
        }
    }

    internal fun explain(platform: String, carried: List<String>, cause: Throwable): String {
        val file = libraryFile(platform)
        val sources = if (version == null) "the reauth sources" else "the reauth $version sources"
        val supply = "Build it for this platform from $sources (`cargo build --release -p reauth-uniffi`, " +
            "which writes target/release/$file) and start the JVM with -Djna.library.path=<the folder holding $file>."
        val list = if (carried.isEmpty()) "no platform" else carried.joinToString(", ")
        return if (platform in carried) {
            val needs = if (glibc == null) "" else "its Linux libraries need glibc $glibc or newer; "
            "reauth: the native library this jar carries for $platform ($platform/$file) did not load: ${cause.message}. " +
                "Where the jar's build does not fit this system (${needs}musl-based systems such as Alpine need " +
                "their own build): $supply"
        } else {
            "reauth: this jar carries its native library for $list, not for $platform (this JVM's platform, as JNA names it). " +
                supply
        }
    }

    /** The library's file name on [platform] (JNA's resource prefix). */
    internal fun libraryFile(platform: String): String = when {
        platform.startsWith("win32-") -> "reauth_uniffi.dll"
        platform.startsWith("darwin") -> "libreauth_uniffi.dylib"
        else -> "libreauth_uniffi.so"
    }

    /** What the generated bindings do on their first call (`Native.register` with the
     *  same name and options): JNA keeps the instance, so their load finds it. */
    private fun load() {
        val name = System.getProperty("uniffi.component.reauth_uniffi.libraryOverride") ?: "reauth_uniffi"
        NativeLibrary.getInstance(name, mapOf(Library.OPTION_CLASSLOADER to NativePlatforms::class.java.classLoader))
    }
}
