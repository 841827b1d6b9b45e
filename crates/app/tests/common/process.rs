//! Driving the binary as a person would: start it in a folder, read what it prints, talk
//! HTTP to it, stop it with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn spawn(dir: &std::path::Path, args: &[&str]) -> Child {
    spawn_with(dir, args, &[])
}

pub fn spawn_with(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_incidencias"))
        .args(args)
        .current_dir(dir)
        .env_remove("INCIDENCIAS_DATABASE_URL")
        .env("INCIDENCIAS_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start incidencias")
}

/// One HTTP/1.1 exchange (Connection: close): status and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    http_typed(addr, method, path, token, "application/json", body)
}

/// [`http`] with a body of another content type.
pub fn http_typed(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Lines of stdout until `done` says stop (or 60 s pass).
pub fn read_until(child: &mut Child, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !done(&lines) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
    }
    lines
}

pub fn terminate(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

/// `incidencias demo` started in `dir` on a free port, once it printed its accounts.
pub struct Demo {
    pub child: Child,
    /// `host:port`.
    pub url: String,
    /// Everything it printed up to its example line.
    pub lines: Vec<String>,
}

impl Demo {
    pub fn start(dir: &std::path::Path) -> Demo {
        Demo::start_with(dir, &[])
    }

    /// The demo with more flags.
    pub fn start_with(dir: &std::path::Path, flags: &[&str]) -> Demo {
        let mut args = vec!["demo", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        let mut child = spawn(dir, &args);
        let lines = read_until(&mut child, |l| l.iter().any(|x| x.starts_with("Ejemplo:")));
        let url = lines
            .iter()
            .find_map(|l| l.strip_prefix("incidencias (demostración) en http://"))
            .expect("the URL is printed")
            .to_string();
        Demo { child, url, lines }
    }
}

/// The API token the demo printed for `email` among `lines`.
pub fn token_in(lines: &[String], email: &str) -> String {
    lines
        .iter()
        .find(|l| l.starts_with(email))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("a token is printed for {email}"))
        .to_string()
}
