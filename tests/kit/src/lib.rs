//! # reauth-testkit — what checks reauth, kept out of what ships
//!
//! The crate `reauth` ships the state machine only. Everything that *checks* it lives
//! here, shared by the property tests (`core/tests`), the model checker (`models/`) and
//! the fuzzer (`fuzz/`):
//!
//! - [`oracle`]: an independent checker of the contract's guarantees (`docs/contract.md`
//!   §9) over what a host sees — inputs, results, command batches, public getters.
//! - [`harness`]: a host in abstract form ([`harness::HostAction`], including hostile
//!   moves) and the [`harness::Harness`] that runs it against a coordinator and the
//!   oracle, with liveness (G7) and determinism (G11) checks.
//! - [`bytes`]: the fuzzer's byte format for host actions.
//! - [`transcript`]: the conformance transcript format of `tests/vectors/` and its
//!   replayer (also the `replay` binary). Transcripts hold token texts in plain text on
//!   purpose; use them with test tokens only.

pub mod bytes;
pub mod harness;
pub mod oracle;
pub mod transcript;
