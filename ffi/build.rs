//! Gives the shared library a versioned soname on Linux, so C programs that link it
//! record `libreauth_ffi.so.0` and survive compatible upgrades.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libreauth_ffi.so.0");
    }
}
