//! The service is the only door: front ends (the JSON API, the pages) never touch the store
//! nor check roles themselves, the workers (scheduler, outbox, IMAP) reach the store only
//! through the service, the service knows none of its front ends, and the store knows
//! nothing above it. Reads the sources rather than trusting a comment (like
//! `crates/core/tests/manifest.rs`).

use std::path::{Path, PathBuf};

/// Which modules a file under `src/` may not name, by where it lives.
fn forbidden_for(relative: &str) -> &'static [&'static str] {
    let top = relative.split('/').next().unwrap_or(relative);
    match top {
        "http" | "http.rs" | "web" | "web.rs" => &["store"],
        "mail" | "mail.rs" | "scheduler.rs" | "webhooks" | "webhooks.rs" => &["store"],
        "service" | "service.rs" => &["http", "web", "mail", "scheduler", "webhooks"],
        "store" | "store.rs" => &["service", "http", "web", "mail", "scheduler", "webhooks"],
        _ => &[],
    }
}

/// The source without comments (a module may be named in a why-comment).
fn code(source: &str) -> String {
    source
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `source` names the crate module `module`: a path (`crate::store::Store`,
/// `incidencias::store`) or a member of a grouped import (`use crate::{http, store};`).
fn names(source: &str, module: &str) -> bool {
    let code = code(source);
    for prefix in ["crate::", "incidencias::"] {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if word == module {
                return true;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                if inner
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == module)
                {
                    return true;
                }
            }
        }
    }
    false
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every forbidden name in the tree under `src`, as `file: module`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let source = std::fs::read_to_string(&file).expect("read source");
        for module in forbidden_for(&relative) {
            if names(&source, module) {
                found.push(format!("{relative}: {module}"));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn front_ends_and_workers_go_through_the_service_and_the_store_knows_nothing_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "forbidden imports (file: module it may not name):\n{}",
        found.join("\n")
    );
}

/// Role checks belong to the service and the core: a handler that calls `require` decides
/// authorization itself.
#[test]
fn no_front_end_checks_roles_itself() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for front in ["http", "web"] {
        let dir = src.join(front);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
    }
    let deciding: Vec<String> = files
        .iter()
        .filter(|f| code(&std::fs::read_to_string(f).expect("read")).contains(".require("))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        deciding.is_empty(),
        "role checks in front ends: {deciding:?}"
    );
}

#[test]
fn the_check_sees_each_way_of_naming_a_module() {
    assert!(names("use crate::store::Store;", "store"));
    assert!(names("use crate::{http, store::Store};", "store"));
    assert!(names("let s: crate::store::Store;", "store"));
    assert!(names("use incidencias::store;", "store"));
    assert!(!names("use crate::storefront;", "store"));
    assert!(!names(
        "// crate::store is private\nuse crate::service;",
        "store"
    ));
    assert_eq!(forbidden_for("http/outbox.rs"), &["store"]);
    assert_eq!(forbidden_for("web/queue.rs"), &["store"]);
    assert!(forbidden_for("store/outbox.rs").contains(&"service"));
    assert!(forbidden_for("service/notify/mod.rs").contains(&"mail"));
}

#[test]
fn a_deliberate_forbidden_import_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = dir.path().join("http");
    std::fs::create_dir_all(&http).expect("mkdir");
    std::fs::write(http.join("ok.rs"), "use crate::service::Service;\n").expect("write");
    assert!(violations(dir.path()).is_empty());
    std::fs::write(http.join("leak.rs"), "use crate::store::Store;\n").expect("write");
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).expect("mkdir");
    std::fs::write(store.join("up.rs"), "use crate::mail::worker;\n").expect("write");
    assert_eq!(
        violations(dir.path()),
        vec![
            "http/leak.rs: store".to_string(),
            "store/up.rs: mail".to_string()
        ]
    );
}
