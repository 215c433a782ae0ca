@file:JvmName("FastPath")

package dev.reauth.okhttp

import com.sun.jna.JNIEnv
import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.NativeLibrary
import dev.reauth.Config
import dev.reauth.ReauthException
import dev.reauth.driverClose
import dev.reauth.driverFree
import dev.reauth.driverNew
import dev.reauth.driverResponse
import dev.reauth.driverSubmit
import java.util.concurrent.atomic.LongAdder
import java.util.logging.Level
import java.util.logging.Logger

/** Whether the interceptor's hot path runs through its JNI entry points on this JVM (it
 *  falls back to the generated bindings, slower, where they cannot be bound). */
fun jniFastPath(): Boolean = NativeDriver.bound

/**
 * The hot path — a call's submit and its response — as two JNI functions of primitives
 * (`bindings/uniffi/src/jni.rs`): through UniFFI's JNA path each call allocates a native
 * call-status structure and crosses by reflection, which cost the interceptor tens of
 * microseconds per call. Same library, same packed step; an error comes back as a
 * negative code, thrown here as the `ReauthException` the generated bindings throw.
 * The JVM is told where they are by `RegisterNatives`, called once through JNA in the
 * library JNA loaded; where that fails, the generated bindings serve (and a warning says
 * so).
 */
internal object NativeDriver {
    /** Whether the JNI entry points are bound (else the generated bindings serve). */
    val bound: Boolean = bind()

    /** Calls into native code, for the tests' deterministic counts: [jumps] through the
     *  JNI entry points, [generated] through the generated bindings (everything else the
     *  interceptor does natively: a step's bytes, the deadline, an abandoned call). */
    val jumps = LongAdder()
    val generated = LongAdder()

    private fun bind(): Boolean =
        try {
            Registrar.reauth_jni_register(JNIEnv.CURRENT).let { check(it == 0) { "RegisterNatives failed ($it)" } }
            // The entry points must reach the library the generated bindings loaded (one
            // driver registry): a driver made through them is known here.
            val probe = driverNew(Config())
            try {
                val packed = submit(probe.toLong(), 0L, true, true, 0L, 0L)
                check(packed >= 0) { "the JNI entry points see another copy of the library ($packed)" }
            } finally {
                driverClose(probe, 0L)
                driverFree(probe)
            }
            true
        } catch (e: Throwable) {
            Logger.getLogger("dev.reauth").log(Level.WARNING, "reauth: JNI fast path unavailable; using the generated bindings (slower)", e)
            false
        }

    /** `reauth_jni_register`, reached through JNA in the very library the generated
     *  bindings loaded (JNA keeps one instance per library name and options). */
    private object Registrar {
        init {
            Native.register(
                Registrar::class.java,
                NativeLibrary.getInstance("reauth_uniffi", mapOf(Library.OPTION_CLASSLOADER to Registrar::class.java.classLoader)),
            )
        }

        @JvmStatic
        external fun reauth_jni_register(env: JNIEnv): Int
    }

    @JvmStatic
    private external fun submit(handle: Long, now: Long, replayable: Boolean, refresh: Boolean, route: Long, known: Long): Long

    @JvmStatic
    private external fun response(handle: Long, now: Long, id: Long, status: Int, known: Long): Long

    /** `driverSubmit`, in one jump when bound. */
    fun submit(handle: ULong, now: Long, replayable: Boolean, refresh: Boolean, route: Long, known: Long): Long =
        if (bound) {
            jumps.increment()
            checked(submit(handle.toLong(), now, replayable, refresh, route, known))
        } else {
            generated.increment()
            driverSubmit(handle, now, replayable, refresh, route, known)
        }

    /** `driverResponse`, in one jump when bound. */
    fun response(handle: ULong, now: Long, id: Long, status: Int, known: Long): Long =
        if (bound) {
            jumps.increment()
            checked(response(handle.toLong(), now, id, status, known))
        } else {
            generated.increment()
            driverResponse(handle, now, id, status, known)
        }

    /** A packed step, or the exception its negative code stands for. */
    private fun checked(packed: Long): Long {
        if (packed >= 0) return packed
        throw when (packed) {
            -1L -> ReauthException.Closed("reauth is closed")
            -2L -> ReauthException.InvalidRoute("invalid route key: route keys are in 1..=4294967295 (route_key(name) makes one)")
            -3L -> ReauthException.InvalidTime("time is before the clock's start or past its end (max_timestamp)")
            -4L -> ReauthException.InvalidStatus("invalid http status (must be in 100..=599)")
            -5L -> ReauthException.UnknownRequest("unknown request")
            -6L -> ReauthException.NotInFlight("the request is not awaiting a response")
            -7L -> ReauthException.UnknownDriver("unknown driver handle")
            -8L -> ReauthException.Poisoned("coordinator lock poisoned by a panic")
            -9L -> ReauthException.InvalidArgument("invalid argument")
            else -> IllegalStateException("reauth: a panic in native code (a bug)")
        }
    }
}
