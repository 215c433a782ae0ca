//! Every rule and guarantee number cited in the code, the tests and the transcripts
//! resolves in `docs/contract.md`: "rule 7", "rules 1, 8", "7.12", "G3", "§9".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ has a parent")
        .to_path_buf()
}

/// The numbers the contract defines: sections, rules (§7) and guarantees (§9).
fn defined() -> (BTreeSet<u32>, BTreeSet<u32>, BTreeSet<u32>) {
    let text = std::fs::read_to_string(root().join("docs/contract.md")).expect("contract");
    let (mut sections, mut rules, mut guarantees) = Default::default();
    let mut section = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("## ") {
            section = leading_number(rest).expect("numbered section");
            BTreeSet::insert(&mut sections, section);
        } else if section == 7
            && let Some(n) = leading_number(line.trim_start())
            && line.trim_start()[n.to_string().len()..].starts_with(". **")
        {
            BTreeSet::insert(&mut rules, n);
        } else if let Some(rest) = line.strip_prefix("- **G") {
            BTreeSet::insert(&mut guarantees, leading_number(rest).expect("G number"));
        }
    }
    (sections, rules, guarantees)
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The numbers that follow `marker` in `text` (e.g. "rule " → 7 for "rule 7"; "rules "
/// reads a list such as "rules 1, 8 and 9").
fn cited(text: &str, marker: &str, list: bool) -> Vec<u32> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(marker) {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let mut rest = &text[i + marker.len()..];
        while let Some(n) = leading_number(rest) {
            out.push(n);
            rest = &rest[n.to_string().len()..];
            if !list {
                break;
            }
            let next = rest
                .strip_prefix(", ")
                .or_else(|| rest.strip_prefix(" and "))
                .or_else(|| rest.strip_prefix(" or "));
            match next {
                Some(r) => rest = r,
                None => break,
            }
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "rs" || e == "json" || e == "c" || e == "h")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_cited_number_resolves_in_the_contract() {
    let (sections, rules, guarantees) = defined();
    assert_eq!(rules, (1..=20).collect(), "rules 1-20 in section 7");
    assert_eq!(guarantees, (1..=11).collect(), "G1-G11 in section 9");
    let mut all = Vec::new();
    for dir in [
        "core",
        "ffi/src",
        "ffi/tests",
        "tests/kit",
        "tests/vectors",
        "models",
    ] {
        files(&root().join(dir), &mut all);
    }
    assert!(all.len() > 40, "found the sources ({})", all.len());
    let mut broken = Vec::new();
    let mut checked = 0;
    for path in &all {
        let text = std::fs::read_to_string(path).expect("utf-8 source");
        let name = path
            .strip_prefix(root())
            .unwrap_or(path)
            .display()
            .to_string();
        let mut check = |kind: &str, n: u32, ok: bool| {
            checked += 1;
            if !ok {
                broken.push(format!("{name}: {kind} {n}"));
            }
        };
        for n in cited(&text, "rule ", false)
            .into_iter()
            .chain(cited(&text, "rules ", true))
            .chain(cited(&text, "Rule ", false))
        {
            check("rule", n, rules.contains(&n));
        }
        for n in cited(&text, "7.", false) {
            check("rule 7.", n, rules.contains(&n));
        }
        for n in cited(&text, "G", false) {
            check("guarantee G", n, guarantees.contains(&n));
        }
        for n in cited(&text, "§", false) {
            check("section §", n, sections.contains(&n));
        }
    }
    assert!(checked > 100, "only {checked} citations found");
    assert!(
        broken.is_empty(),
        "citations missing from docs/contract.md: {broken:#?}"
    );
}
