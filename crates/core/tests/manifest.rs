//! The core stays pure: no async runtime, database, web framework or clock source among its
//! dependencies. Reads the manifest rather than trusting a comment.

#[test]
fn core_manifest_has_no_runtime_database_or_web_dependency() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("read crates/core/Cargo.toml");
    let forbidden = [
        "tokio",
        "async-std",
        "smol",
        "sqlx",
        "rusqlite",
        "diesel",
        "sea-orm",
        "postgres",
        "axum",
        "hyper",
        "tower",
        "actix",
        "warp",
        "reqwest",
        "lettre",
    ];
    let mut section = String::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        // Only what the library itself links: [dependencies] and target-specific ones.
        if !(section == "[dependencies]" || section.ends_with(".dependencies]"))
            || section.contains("dev-dependencies")
        {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
        assert!(
            !forbidden.contains(&name),
            "crates/core must stay pure, but depends on `{name}` in {section}"
        );
    }
    assert!(
        manifest.contains("[dependencies]"),
        "the manifest was read and has a dependencies table"
    );
}

#[test]
fn core_sources_never_read_the_clock() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    for entry in std::fs::read_dir(dir).expect("list src") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read source");
        for needle in [
            "Timestamp::now",
            "SystemTime::now",
            "Instant::now",
            "Zoned::now",
        ] {
            assert!(
                !text.contains(needle),
                "{} calls {needle}: time must be a parameter",
                path.display()
            );
        }
    }
}
