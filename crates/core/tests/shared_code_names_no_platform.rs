//! Shared code never names a platform: it reads what each platform's module declares. Outside a
//! platform's own crates (those whose `Cargo.toml` says `[package.metadata.switchboard]
//! platform = "…"`), only the three registries may name one: the core's list of platform ids,
//! the binary's module registry and the simulator's registry.
//!
//! Scanned: the non-test source of every other crate (`.rs`, `.js`, `.html`), code and string
//! literals alike, up to its `#[cfg(test)]` module. Not scanned: comments (an example may name a
//! platform), tests and benches, and migrations (released ones are history; the live schema is
//! checked by the store's conformance suite).

use std::fs;
use std::path::{Path, PathBuf};

use switchboard_core::Platform;

const REGISTRIES: [&str; 3] = [
    "crates/core/src/platform.rs",
    "crates/switchboard/src/platforms.rs",
    "crates/sim/src/lib.rs",
];

/// Vendors' names that are not a platform id: a module's own words for its vendor's services,
/// and the platforms planned after these.
const VENDOR_WORDS: [&str; 5] = ["microsoft", "entra", "google", "matrix", "xmpp"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/core sits two levels below the workspace")
        .to_path_buf()
}

/// Whether a crate is a platform's own: its hub module or its simulated platform.
fn belongs_to_a_platform(crate_dir: &Path) -> bool {
    let manifest = fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap_or_default();
    let manifest: toml::Table = manifest.parse().expect("every crate's Cargo.toml parses");
    manifest
        .get("package")
        .and_then(|package| package.get("metadata"))
        .and_then(|metadata| metadata.get("switchboard"))
        .and_then(|switchboard| switchboard.get("platform"))
        .and_then(toml::Value::as_str)
        .is_some_and(|platform| {
            assert!(
                platform.parse::<Platform>().is_ok(),
                "{} declares unknown platform {platform:?}",
                crate_dir.display()
            );
            true
        })
}

fn source_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("a source directory is readable") {
        let path = entry.expect("a directory entry is readable").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "tests" | "benches" | "migrations" | "test_support") {
                source_files(&path, found);
            }
        } else if name != "tests.rs"
            && ["rs", "js", "html"]
                .iter()
                .any(|ext| path.extension().is_some_and(|e| e == *ext))
        {
            found.push(path);
        }
    }
}

/// The code of a line without its comment, or `None` when the whole line is a comment.
fn code_of(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if ["//", "/*", "*", "--", "<!--"]
        .iter()
        .any(|start| trimmed.starts_with(start))
    {
        return None;
    }
    Some(line.find(" // ").map_or(line, |at| &line[..at]))
}

/// What in a line of code names a platform, if anything.
fn platform_named_in(code: &str) -> Option<String> {
    let lower = code.to_lowercase();
    for platform in Platform::ALL {
        let id = platform.as_str();
        let variant = format!("Platform::{platform:?}");
        let literal = format!("\"{id}\"");
        // A platform id that is also a word of the hub's own vocabulary ("teams" as in selected
        // teams, a JSON field) names the platform only where code compares or matches it.
        let names_it = if is_hub_vocabulary(id) {
            [
                format!("{literal} =>"),
                format!("=> {literal}"),
                format!("== {literal}"),
                format!("{literal} =="),
            ]
            .iter()
            .any(|usage| code.contains(usage))
        } else {
            code.contains(&literal)
        };
        if code.contains(&variant) || names_it {
            return Some(id.to_owned());
        }
        // A platform's own words, in identifiers (`on_xyz`, `XyzApp`) or text: its id and the
        // first word of its name, except words of the hub's own vocabulary.
        let words = [id, platform.display_name().split(' ').next().unwrap_or(id)];
        for word in words {
            let word = word.to_lowercase();
            if is_hub_vocabulary(&word) {
                continue;
            }
            if lower.contains(&word) {
                return Some(word);
            }
        }
    }
    VENDOR_WORDS
        .iter()
        .find(|word| lower.contains(*word))
        .map(|word| (*word).to_owned())
}

fn is_hub_vocabulary(word: &str) -> bool {
    matches!(word, "teams" | "team")
}

#[test]
fn shared_code_names_no_platform() {
    let root = workspace();
    let mut files = Vec::new();
    for entry in fs::read_dir(root.join("crates")).expect("crates/ is readable") {
        let crate_dir = entry.expect("a directory entry is readable").path();
        if crate_dir.join("Cargo.toml").exists() && !belongs_to_a_platform(&crate_dir) {
            source_files(&crate_dir.join("src"), &mut files);
        }
    }
    files.sort();
    assert!(
        files.len() > 50,
        "the scan found only {} files: is the workspace where it is expected?",
        files.len()
    );
    let mut offences = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under the workspace");
        let relative = relative.to_string_lossy().replace('\\', "/");
        if REGISTRIES.contains(&relative.as_str()) {
            continue;
        }
        let text = fs::read_to_string(file).expect("a source file is UTF-8");
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if let Some(named) = code_of(line).and_then(platform_named_in) {
                offences.push(format!(
                    "{relative}:{}: names {named}: {}",
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "shared code names a platform in {} lines; read the module's declarations instead \
         (PlatformRules, ChatPlatform) or move the code into the platform's crates:\n{}",
        offences.len(),
        offences.join("\n")
    );
}

#[test]
fn the_scan_sees_what_it_must() {
    assert_eq!(
        platform_named_in(r#"if p == Platform::Teams {"#),
        Some("teams".into())
    );
    assert_eq!(
        platform_named_in(r#"match name { "teams" => 1 }"#),
        Some("teams".into())
    );
    assert_eq!(
        platform_named_in(r#"if name == "teams" {"#),
        Some("teams".into())
    );
    assert_eq!(platform_named_in(r#"json!({ "teams": chosen })"#), None);
    assert_eq!(
        platform_named_in("let on_slack = true;"),
        Some("slack".into())
    );
    assert_eq!(
        platform_named_in(r#"say("Zoom users")"#),
        Some("zoom".into())
    );
    assert_eq!(
        platform_named_in(r#"label: "Microsoft Entra""#),
        Some("microsoft".into())
    );
    assert_eq!(
        platform_named_in("let selected_teams = list_teams();"),
        None
    );
    assert_eq!(code_of("    // Slack signs each app's events"), None);
    assert_eq!(code_of("let x = 1; // as Slack does"), Some("let x = 1;"));
}
