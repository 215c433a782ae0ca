//! Replays every conformance transcript in `tests/vectors/` and checks that together they
//! cover every rule of `docs/contract.md` §7.

use std::collections::BTreeSet;
use std::path::PathBuf;

use reauth_testkit::transcript::{Transcript, replay};

fn vectors() -> Vec<(PathBuf, Transcript)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable transcript");
            let t: Transcript =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, t)
        })
        .collect()
}

#[test]
fn every_transcript_replays_exactly() {
    let mut report = String::new();
    let all = vectors();
    for (path, transcript) in &all {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert_eq!(
            transcript.name,
            stem,
            "{}: name must equal the file name",
            path.display()
        );
        assert!(!transcript.steps.is_empty(), "{}: no steps", path.display());
        let mismatches = replay(transcript).expect("valid config");
        if !mismatches.is_empty() {
            report.push_str(&format!("{}:\n", path.display()));
            for m in mismatches {
                report.push_str(&m.to_string());
            }
        }
    }
    assert!(report.is_empty(), "transcript mismatches:\n{report}");
    assert!(
        all.len() >= 16,
        "expected at least one transcript per rule, found {}",
        all.len()
    );
}

#[test]
fn transcripts_cover_every_rule_and_the_transcribable_guarantees() {
    let covered: BTreeSet<String> = vectors().into_iter().flat_map(|(_, t)| t.covers).collect();
    let mut missing: Vec<String> = (1..=20).map(|r| format!("7.{r}")).collect();
    missing.extend(
        ["G1", "G2", "G3", "G4", "G5", "G6", "G8", "G9"]
            .iter()
            .map(|g| g.to_string()),
    );
    missing.retain(|r| !covered.contains(r));
    assert!(missing.is_empty(), "no transcript covers {missing:?}");
}
