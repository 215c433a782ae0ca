//! The demo's building blocks: the reauth host (`host`: the `reauth-reqwest` middleware on
//! a reqwest client), the naive strategy it is compared with (`naive`), and the load
//! runner (`run`).

pub mod host;
pub mod naive;
pub mod oauth;
pub mod run;
