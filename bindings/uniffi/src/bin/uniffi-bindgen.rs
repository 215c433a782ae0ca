//! uniffi's binding generator, built only with the `bindgen` feature: maturin runs it to
//! generate the Python module, also when it builds the Python sdist, which carries this
//! crate and its path dependencies but not the bindings workspace's `uniffi-bindgen`.
fn main() {
    uniffi::uniffi_bindgen_main()
}
