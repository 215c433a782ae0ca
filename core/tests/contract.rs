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
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            // Build output, virtual environments and caches hold nobody's citations.
            if !(name.starts_with('.') || name == "target" || name == "__pycache__") {
                files(&path, out);
            }
        } else if path.extension().is_some_and(|e| {
            ["rs", "json", "c", "h", "py", "kt", "swift", "md"]
                .iter()
                .any(|x| e == *x)
        }) {
            out.push(path);
        }
    }
}

/// Whether the citation at byte `i` of `text` is another document's section (an RFC's,
/// "RFC 6749 §5.2"), not the contract's.
fn foreign(text: &str, i: usize) -> bool {
    let from = text[..i]
        .char_indices()
        .rev()
        .nth(12)
        .map_or(0, |(at, _)| at);
    text[from..i].contains("RFC")
}

#[test]
fn every_cited_number_resolves_in_the_contract() {
    let (sections, rules, guarantees) = defined();
    assert_eq!(rules, (1..=20).collect(), "rules 1-20 in section 7");
    assert_eq!(guarantees, (1..=11).collect(), "G1-G11 in section 9");
    let mut all = Vec::new();
    for dir in [
        "core",
        "host",
        "ffi/src",
        "ffi/tests",
        "ffi/include",
        "tests/kit",
        "tests/vectors",
        "tests/server",
        "models",
        "demo",
        "docs",
        "bindings/uniffi/src",
        "bindings/reqwest",
        "bindings/python/python",
        "bindings/python/tests",
        "bindings/kotlin/src",
        "bindings/swift/Sources",
    ] {
        files(&root().join(dir), &mut all);
    }
    all.push(root().join("README.md"));
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
        for (i, _) in text.match_indices('§') {
            if foreign(&text, i) {
                continue;
            }
            for n in cited(&text[i..], "§", false).into_iter().take(1) {
                check("section §", n, sections.contains(&n));
            }
        }
    }
    assert!(checked > 100, "only {checked} citations found");
    assert!(
        broken.is_empty(),
        "citations missing from docs/contract.md: {broken:#?}"
    );
}

// ----- the rules table (core/src/rules.rs) and the documents generated from it ---------

/// The contract's rule index, generated from [`reauth::rules::RULES`].
fn rule_index() -> String {
    let code = |names: &[&str]| {
        if names.is_empty() {
            "—".to_owned()
        } else {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut out = String::from(
        "<!-- rule index: generated from core/src/rules.rs; core/tests/contract.rs checks it -->\n\
         | rule | name | reacts to | may emit |\n| --- | --- | --- | --- |\n",
    );
    for r in &reauth::rules::RULES {
        out += &format!(
            "| {} | {} | {} | {} |\n",
            r.number,
            r.name,
            code(r.on),
            code(r.emits)
        );
    }
    out + "<!-- end of rule index -->\n"
}

/// The rules → code table at the top of `core/src/coordinator/mod.rs`, generated from
/// [`reauth::rules::RULES`].
fn code_table() -> String {
    let mut out = String::from("//! | rule | name | where |\n//! | --- | --- | --- |\n");
    for r in &reauth::rules::RULES {
        let links: Vec<String> = r.code.iter().map(|c| format!("[`{c}`]")).collect();
        out += &format!(
            "//! | 7.{} | {} | {} |\n",
            r.number,
            r.name,
            links.join(", ")
        );
    }
    out
}

/// `text` with the block that starts with `first` and ends with `last` (both lines
/// included) replaced by `block`; `None` if there is no such block.
fn replace_block(text: &str, first: &str, last: &str, block: &str) -> Option<String> {
    let start = text.find(first)?;
    let end = start + text[start..].find(last)? + last.len();
    let end = end + text[end..].find('\n').map_or(0, |i| i + 1);
    Some(format!("{}{block}{}", &text[..start], &text[end..]))
}

/// The rules table and the documents generated from it agree: the contract's rule titles
/// are the table's names, its rule index and the coordinator's rules → code table are the
/// ones the table generates, every input, command and function the table names exists.
/// `REAUTH_REGENERATE_RULES=1` rewrites a stale index or code table and fails that run
/// (a rewrite never counts as a pass).
#[test]
fn the_rules_table_is_the_one_the_documents_show() {
    use reauth::rules::RULES;
    let contract_path = root().join("docs/contract.md");
    let contract = std::fs::read_to_string(&contract_path).expect("contract");
    let section = |n: u32| -> &str {
        let start = contract.find(&format!("\n## {n}. ")).expect("section");
        let end = contract[start + 1..]
            .find("\n## ")
            .map_or(contract.len(), |e| start + 1 + e);
        &contract[start..end]
    };
    // The titles: "N. **Title.**" or "N. **Title** (v2)."
    let titles: Vec<(u32, String)> = section(7)
        .lines()
        .filter_map(|line| {
            let n = leading_number(line)?;
            let rest = line[n.to_string().len()..].strip_prefix(". **")?;
            let title = &rest[..rest.find("**")?];
            Some((n, title.trim_end_matches('.').to_owned()))
        })
        .collect();
    let table: Vec<(u32, String)> = RULES
        .iter()
        .map(|r| (u32::from(r.number), r.name.to_owned()))
        .collect();
    assert_eq!(
        titles, table,
        "the contract's rule titles are the table's names"
    );
    // Inputs (§5) and commands (§6) the table names exist.
    let inputs: BTreeSet<&str> = section(5)
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('(').next())
        .collect();
    // The commands: §6's first table (its later tables name inputs), capitalised.
    let commands: BTreeSet<&str> = section(6)
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.strip_prefix("| `")?.split([' ', '`']).next())
        .filter(|c| c.starts_with(|ch: char| ch.is_ascii_uppercase()))
        .collect();
    assert!(
        commands.contains("Send") && !commands.contains("login"),
        "{commands:?}"
    );
    let source =
        std::fs::read_to_string(root().join("core/src/coordinator/mod.rs")).expect("coordinator");
    for r in &RULES {
        for i in r.on {
            assert!(inputs.contains(i), "rule {}: no input {i} in §5", r.number);
        }
        for c in r.emits {
            assert!(
                commands.contains(c),
                "rule {}: no command {c} in §6",
                r.number
            );
        }
        for f in r.code {
            let (ty, method) = f.split_once("::").expect("Type::method");
            // Some `impl Type {` block of the coordinator holds `fn method(`.
            let found = source
                .match_indices(&format!("\nimpl {ty} {{"))
                .any(|(at, _)| {
                    let block = &source[at..at + source[at + 1..].find("\n}").unwrap_or(0) + 1];
                    block.contains(&format!("fn {method}("))
                });
            assert!(found, "rule {}: no fn {method} in impl {ty}", r.number);
        }
    }
    // The generated documents.
    let regenerate = std::env::var_os("REAUTH_REGENERATE_RULES").is_some();
    let mut stale = Vec::new();
    let index = rule_index();
    if !contract.contains(&index) {
        stale.push("docs/contract.md's rule index");
        if regenerate {
            let fixed = replace_block(
                &contract,
                "<!-- rule index:",
                "<!-- end of rule index -->",
                &index,
            )
            .expect("the contract has a rule index block");
            std::fs::write(&contract_path, fixed).expect("write the contract");
        }
    }
    let table = code_table();
    if !source.contains(&table) {
        stale.push("core/src/coordinator/mod.rs's rules -> code table");
        if regenerate {
            let last = format!("//! | 7.{} |", RULES.len());
            let fixed = replace_block(&source, "//! | rule | name | where |", &last, &table)
                .expect("the coordinator has a rules -> code table");
            std::fs::write(root().join("core/src/coordinator/mod.rs"), fixed)
                .expect("write the coordinator");
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from core/src/rules.rs. {}",
        if regenerate {
            "Rewritten: review the diff and run the test again."
        } else {
            "Regenerate with REAUTH_REGENERATE_RULES=1 cargo test -p reauth --test contract (that run rewrites and fails; the next passes)."
        }
    );
}

/// The README's state diagram names exactly the machine's states: the phases and the
/// refresh cycle's states as the code spells them.
#[test]
fn the_state_diagram_names_the_states_of_the_code() {
    let source =
        std::fs::read_to_string(root().join("core/src/coordinator/mod.rs")).expect("coordinator");
    let variants = |name: &str| -> Vec<String> {
        let start = source.find(&format!("\nenum {name} {{")).expect("the enum");
        let body = &source[start..start + source[start..].find("\n}").expect("its end")];
        body.lines()
            .skip(1)
            .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
            .filter_map(|l| {
                let t = l.trim();
                let name: String = t.chars().take_while(char::is_ascii_alphanumeric).collect();
                (!name.is_empty() && name.starts_with(|c: char| c.is_ascii_uppercase()))
                    .then_some(name)
            })
            .collect()
    };
    let mut code: BTreeSet<String> = variants("Phase").into_iter().collect();
    code.extend(variants("Cycle"));
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let start = readme
        .find("```mermaid\nstateDiagram-v2\n")
        .expect("a state diagram");
    let body = &readme[start..start + readme[start + 3..].find("```").expect("its end") + 3];
    let mut drawn = BTreeSet::new();
    for line in body.lines().skip(2) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("state ") {
            drawn.insert(rest.trim_end_matches(" {").to_owned());
        } else if let Some((from, to)) = line.split_once("-->") {
            let to = to.split(':').next().unwrap_or("");
            for s in [from.trim(), to.trim()] {
                if s != "[*]" {
                    drawn.insert(s.to_owned());
                }
            }
        }
    }
    assert_eq!(
        drawn, code,
        "the README's state diagram and the code's states"
    );
}
