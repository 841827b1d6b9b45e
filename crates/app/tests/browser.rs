//! The web UI in a real browser: `incidencias demo` walked end to end by every role of the
//! protocol (tests/browser/walk.mjs, Playwright driving Chromium), every page audited for
//! accessibility (axe-core, WCAG 2.1 A/AA) and photographed, one action taken with
//! JavaScript off, the queue and the incident on a phone, the Content-Security-Policy in
//! force, and another agency kept out.
//!
//! Needs Node.js 20+, Chromium (`INCIDENCIAS_TEST_CHROMIUM`, default `/usr/bin/chromium`)
//! and the walk's packages (`npm ci --prefix crates/app/tests/browser`). Without them the
//! test says so loudly and passes, except under `CI=true`, where it fails.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::{Demo, http, http_typed, terminate, token_in};
use serde_json::{Value, json};

/// The whole walk, launch included; the walk itself takes well under a minute.
const WALK_TIMEOUT: Duration = Duration::from_secs(300);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn walk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("INCIDENCIAS_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// What is missing to run the walk, if anything.
fn missing_prerequisite() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    let major = node
        .as_ref()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
        });
    match major {
        None => return Some("Node.js (`node` is not on PATH)".into()),
        Some(m) if m < 20 => return Some(format!("Node.js 20 or newer (found {m})")),
        Some(_) => {}
    }
    let chromium = chromium();
    if !chromium.is_file() {
        return Some(format!(
            "Chromium at {} (apt-get install chromium, or set INCIDENCIAS_TEST_CHROMIUM)",
            chromium.display()
        ));
    }
    let modules = walk_dir().join("node_modules");
    for package in ["playwright-core/package.json", "axe-core/axe.min.js"] {
        if !modules.join(package).is_file() {
            return Some(format!(
                "{} (npm ci --prefix crates/app/tests/browser)",
                modules.join(package).display()
            ));
        }
    }
    None
}

/// Stops the demo however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.0);
    }
}

/// Creates, as the admin, an agency with no incidents and a user of it who signs in with
/// `password`; returns the user's email.
fn another_agency_user(url: &str, admin: &str, password: &str) -> String {
    let agency = json!({
        "name": "Agencia Ajena de Pruebas",
        "acronym": "AJENA",
        "email_domains": ["ajena.gob.mx"],
    });
    let (status, body) = http(
        url,
        "POST",
        "/api/v1/agencies",
        Some(admin),
        Some(&agency.to_string()),
    );
    assert_eq!(status, 201, "create the other agency: {body}");
    let agency: Value = serde_json::from_str(&body).expect("agency JSON");
    let agency_id = agency["id"].as_i64().expect("the agency's id");

    let email = "enlace@ajena.gob.mx";
    let user = json!({
        "name": "Enlace de la Agencia Ajena",
        "email": email,
        "role": "agency",
        "agency_id": agency_id,
        "password": password,
    });
    let (status, body) = http(
        url,
        "POST",
        "/api/v1/users",
        Some(admin),
        Some(&user.to_string()),
    );
    assert_eq!(status, 201, "create the other agency's user: {body}");
    email.to_string()
}

/// Waits for the walk, killing it (and the browser it started) after `WALK_TIMEOUT`.
fn wait_for_walk(walk: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + WALK_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = walk.try_wait().expect("wait for node") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGTERM first: Playwright closes the browser it launched; then the whole group.
    let group = format!("-{}", walk.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    std::thread::sleep(Duration::from_secs(5));
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = walk.wait();
    None
}

#[test]
fn every_role_walks_an_incident_from_report_to_closure_in_an_accessible_browser_ui() {
    if let Some(missing) = missing_prerequisite() {
        if in_ci() {
            panic!(
                "CI=true and the browser walk cannot run: it needs {missing} (.ci/run installs it)"
            );
        }
        // Straight to the process's stderr: libtest captures `eprintln!` of passing tests,
        // and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: browser walk of the web UI needs {missing}\n\
             *** (CI=true makes this a failure)"
        );
        return;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    // A second local origin plays the portal: the demo lets it read the public status
    // (CORS), and the walk serves a procedure page there with the banner's script.
    let portal_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let portal_origin = format!("http://127.0.0.1:{portal_port}");
    let origins = format!("https://www.gob.mx,{portal_origin}");
    let Demo {
        mut child,
        url,
        lines,
    } = Demo::start_with(dir.path(), &["--portal-origins", &origins]);
    // The server's warnings, shown if the test fails (and never left to fill the pipe).
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[incidencias] {line}");
            }
        });
    }
    let server = Server(child);

    let admin = token_in(&lines, "admin@incidencias.gob.mx");
    // A message the help desk must review (no folio, an unknown sender): the walk turns it
    // into an incident.
    let raw = "From: ciudadana@ejemplo.com\r\nTo: mesa@ugd.gob.mx\r\n\
               Subject: Falla reportada por correo\r\nMessage-ID: <recorrido@ejemplo.com>\r\n\r\n\
               La Consulta de pagos no abre desde la mañana.\r\n";
    let (status, body) = http_typed(
        &url,
        "POST",
        "/api/v1/inbound-email",
        Some(&token_in(&lines, "mesa@ugd.gob.mx")),
        "message/rfc822",
        Some(raw),
    );
    assert_eq!(status, 202, "deliver a message for review: {body}");
    let other_password = "clave-de-la-agencia-ajena";
    let other_email = another_agency_user(&url, &admin, other_password);

    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let _ = writeln!(
        std::io::stderr(),
        "browser walk: screenshots in {}",
        screenshots.display()
    );
    let mut walk = {
        use std::os::unix::process::CommandExt;
        Command::new("node")
            .arg(walk_dir().join("walk.mjs"))
            .current_dir(walk_dir())
            .env("BASE_URL", format!("http://{url}"))
            .env("DEMO_PASSWORD", incidencias::demo::DEMO_PASSWORD)
            .env("OTHER_EMAIL", &other_email)
            .env("OTHER_PASSWORD", other_password)
            .env("SCREENSHOTS", &screenshots)
            .env("PORTAL_ORIGIN", &portal_origin)
            .env("INCIDENCIAS_TEST_CHROMIUM", chromium())
            // Its output goes straight to the terminal, as it happens.
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            // Its own process group, so that a timeout can end it and its browser.
            .process_group(0)
            .spawn()
            .expect("start node")
    };
    let status = wait_for_walk(&mut walk);
    drop(server);
    match status {
        None => panic!(
            "the browser walk did not finish within {} s (killed); screenshots in {}",
            WALK_TIMEOUT.as_secs(),
            screenshots.display()
        ),
        Some(status) => assert!(
            status.success(),
            "the browser walk failed ({status}): see its output above and the screenshots in {}",
            screenshots.display()
        ),
    }
}
