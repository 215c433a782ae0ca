//! The demo's building blocks: an async reauth host (`driver`), the naive strategy it is
//! compared with (`naive`), and the load runner (`run`).

pub mod driver;
pub mod naive;
pub mod oauth;
pub mod run;
