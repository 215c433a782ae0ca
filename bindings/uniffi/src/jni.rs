//! The JVM's hot path: `submit` and `response` as plain JNI functions of primitives, for
//! the OkHttp adapter (`dev.reauth.okhttp.NativeDriver`). Through UniFFI's JNA path every
//! call allocates a native call-status structure and crosses by reflection; here a call
//! is a jump. The result is the same packed step as [`crate::driver_submit`]'s; an error
//! is a negative code ([`code`]) the Kotlin side turns into the `ReauthException` UniFFI
//! would have thrown. Every other driver function stays on the generated bindings.
//!
//! Primitive arguments only, so the functions need no `JNIEnv` call: the JNI types are
//! the C ones (`jlong` = `i64`, `jint` = `i32`, `jboolean` = `u8`).
//!
//! The JVM finds them by [`reauth_jni_register`], which the Kotlin side calls once through
//! JNA with the `JNIEnv` and the class: JNA loads the library itself (from the jar, into a
//! file it deletes once mapped), so the JVM's own lookup by symbol name (`System.load`)
//! cannot see this copy, and loading a second copy would give a second driver registry.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use jni_sys::{JNIEnv, JNINativeMethod, jclass, jint};

use crate::ReauthError;

/// The negative code of an error (the Kotlin side maps each to its `ReauthException`).
fn code(e: &ReauthError) -> i64 {
    match e {
        ReauthError::Closed => -1,
        ReauthError::InvalidRoute => -2,
        ReauthError::InvalidTime(_) => -3,
        ReauthError::InvalidStatus(_) => -4,
        ReauthError::UnknownRequest(_) => -5,
        ReauthError::NotInFlight(_) => -6,
        ReauthError::UnknownDriver(_) => -7,
        ReauthError::Poisoned => -8,
        ReauthError::UnknownAttempt(_)
        | ReauthError::InvalidCredentials(_)
        | ReauthError::InvalidConfig(_)
        | ReauthError::InvalidArgument(_)
        // Not returned by the driver's hot path (transcripts are read through UniFFI).
        | ReauthError::InvalidTranscript(_)
        | ReauthError::TranscriptMismatch(_) => -9,
    }
}

/// Runs `f`, with an error or a panic (never unwound into the JVM) as a negative code.
fn guarded(f: impl FnOnce() -> Result<i64, ReauthError>) -> i64 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(packed)) => packed,
        Ok(Err(e)) => code(&e),
        Err(_) => -10,
    }
}

/// `NativeDriver.submit(handle, now, replayable, refresh, route, known)`: as
/// [`crate::driver_submit`].
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_reauth_okhttp_NativeDriver_submit(
    _env: *mut c_void,
    _class: *mut c_void,
    handle: i64,
    now: i64,
    replayable: u8,
    refresh: u8,
    route: i64,
    known: i64,
) -> i64 {
    guarded(|| {
        crate::driver_submit(
            handle.cast_unsigned(),
            now,
            replayable != 0,
            refresh != 0,
            route,
            known,
        )
    })
}

/// `NativeDriver.response(handle, now, id, status, known)`: as [`crate::driver_response`]
/// (a response without challenges; one with them goes through the generated bindings).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_reauth_okhttp_NativeDriver_response(
    _env: *mut c_void,
    _class: *mut c_void,
    handle: i64,
    now: i64,
    id: i64,
    status: i32,
    known: i64,
) -> i64 {
    guarded(|| crate::driver_response(handle.cast_unsigned(), now, id, status, known))
}

/// The class whose native methods [`reauth_jni_register`] binds.
const CLASS: &std::ffi::CStr = c"dev/reauth/okhttp/NativeDriver";

/// Binds `dev.reauth.okhttp.NativeDriver`'s `submit` and `response` to the functions
/// above (JNI `FindClass`, then `RegisterNatives`). Returns 0 on success; -1 for a null
/// `env`, -2 when the class is not found (its exception is cleared), else JNI's negative
/// status. Called by the Kotlin adapter through JNA, which passes the calling thread's
/// `JNIEnv` (JNA cannot pass the class itself; `FindClass` resolves it with the class
/// loader of the calling code, the adapter's own).
///
/// # Safety
///
/// `env` must be the calling thread's valid `JNIEnv`, called from Java code.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reauth_jni_register(env: *mut JNIEnv) -> i32 {
    if env.is_null() {
        return -1;
    }
    let methods = [
        JNINativeMethod {
            name: c"submit".as_ptr().cast_mut(),
            signature: c"(JJZZJJ)J".as_ptr().cast_mut(),
            fnPtr: Java_dev_reauth_okhttp_NativeDriver_submit as *mut c_void,
        },
        JNINativeMethod {
            name: c"response".as_ptr().cast_mut(),
            signature: c"(JJJIJ)J".as_ptr().cast_mut(),
            fnPtr: Java_dev_reauth_okhttp_NativeDriver_response as *mut c_void,
        },
    ];
    // SAFETY: `env` is the caller's valid JNIEnv (this function's contract), so `*env`
    // points to the JVM's function table, whose entries take these arguments; the class
    // name, method names and signatures are NUL-terminated statics (the JVM copies what
    // it keeps); a pending exception is cleared before returning to Java.
    unsafe {
        let table = &**env;
        let (Some(find), Some(clear), Some(register)) =
            (table.FindClass, table.ExceptionClear, table.RegisterNatives)
        else {
            return -1;
        };
        let class: jclass = find(env, CLASS.as_ptr());
        if class.is_null() {
            clear(env);
            return -2;
        }
        let status = register(env, class, methods.as_ptr(), methods.len() as jint);
        if status != 0 {
            clear(env);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jni_entry_points_are_the_driver_functions_with_codes_for_errors() {
        let handle = crate::driver_new(crate::default_config()).expect("driver");
        let h = handle.cast_signed();
        let null = std::ptr::null_mut();
        assert_eq!(
            Java_dev_reauth_okhttp_NativeDriver_submit(null, null, h, 1, 1, 1, 0, 0) & 7,
            i64::from(reauth_host::wire::OWN_FAIL),
            "not logged in: a failure, packed"
        );
        assert_eq!(
            Java_dev_reauth_okhttp_NativeDriver_submit(null, null, h, -1, 1, 1, 0, 0),
            -3,
            "a negative time"
        );
        assert_eq!(
            Java_dev_reauth_okhttp_NativeDriver_submit(null, null, h, 1, 1, 1, 1 << 40, 0),
            -2,
            "a route past 32 bits"
        );
        assert_eq!(
            Java_dev_reauth_okhttp_NativeDriver_response(null, null, h, 1, 99, 200, 0),
            -5,
            "an unknown request"
        );
        assert_eq!(
            Java_dev_reauth_okhttp_NativeDriver_submit(null, null, h + 1_000, 1, 1, 1, 0, 0),
            -7,
            "an unknown driver"
        );
        crate::driver_close(handle, 2).expect("close");
        assert_eq!(
            Java_dev_reauth_okhttp_NativeDriver_submit(null, null, h, 3, 1, 1, 0, 0),
            -1,
            "closed"
        );
        crate::driver_free(handle);
    }
}
