//! The repository README shows the crate README's example verbatim (minus the hidden `#`
//! lines), so the README's code is the code the doctest compiles. It reads the repository's
//! README, so it runs in the repository, not from the published package.

#[test]
fn the_repository_readme_shows_the_compiled_example() {
    let crate_readme = include_str!("../README.md");
    let root_readme = include_str!("../../../README.md");
    let start = crate_readme.find("```rust,no_run\n").expect("example") + "```rust,no_run\n".len();
    let end = start + crate_readme[start..].find("```").expect("end");
    let shown: String = crate_readme[start..end]
        .lines()
        .filter(|l| !l.starts_with("# "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        root_readme.contains(&shown),
        "README.md must show:\n{shown}"
    );
}
