//! The processes of a burst: the local SMTP server (aiosmtpd writing a Maildir) and the
//! `serve` instances, started as children of this process and killed with it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::BurstBench;
use crate::bench::invalid;
use crate::store::StoreError;

/// `n` random bytes in hexadecimal.
pub(super) fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(invalid)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The processes started here: killed when the bench ends, also on an error (drop).
#[derive(Default)]
pub(super) struct Children(Vec<(String, Child)>);

impl Children {
    pub(super) fn push(&mut self, child: (String, Child)) {
        self.0.push(child);
    }

    /// An error naming the first child that has exited, if any.
    pub(super) fn check(&mut self) -> Result<(), StoreError> {
        for (name, child) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(invalid(format!(
                    "{name} terminó antes de tiempo ({status})"
                )));
            }
        }
        Ok(())
    }

    pub(super) async fn kill(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.start_kill();
        }
        for (_, child) in &mut self.0 {
            let _ = child.wait().await;
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.start_kill();
        }
    }
}

pub(super) fn check_aiosmtpd(python: &str) -> Result<(), StoreError> {
    let found = std::process::Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        Ok(())
    } else {
        Err(invalid(format!(
            "esta medición necesita un servidor SMTP local: «{python} -c 'import aiosmtpd'» \
             falló. Instálelo con «{python} -m pip install aiosmtpd==1.4.6» o indique otro \
             Python con --python (INCIDENCIAS_BENCH_PYTHON)"
        )))
    }
}

/// aiosmtpd on `--smtp-port`, writing every message it accepts into `maildir`.
pub(super) async fn start_smtp(
    args: &BurstBench,
    maildir: &Path,
    dir: &Path,
) -> Result<(String, Child), StoreError> {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub))?;
    }
    let port = args.smtp_port;
    // A server already there would receive nothing of ours and answer for us.
    std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        invalid(format!(
            "el puerto SMTP {port} no está libre ({e}); elija otro con --smtp-port"
        ))
    })?;
    let log = std::fs::File::create(dir.join("smtp.log"))?;
    let child = Command::new(&args.python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| invalid(format!("no se pudo iniciar aiosmtpd: {e}")))?;
    let mut smtp = ("el servidor SMTP".to_string(), child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(smtp);
        }
        if let Ok(Some(status)) = smtp.1.try_wait() {
            return Err(invalid(format!(
                "aiosmtpd terminó al iniciar ({status}); ver {}",
                dir.join("smtp.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = smtp.1.start_kill();
    Err(invalid(format!(
        "aiosmtpd no aceptó conexiones en el puerto {port}"
    )))
}

/// One `serve` process of this binary on a port of its own choosing; its address, read
/// from the line it prints once listening.
pub(super) async fn start_instance(
    args: &BurstBench,
    url: &str,
    secret: &str,
    dir: &Path,
    i: usize,
) -> Result<((String, Child), String), StoreError> {
    let exe = std::env::current_exe()?;
    let log_path = dir.join(format!("instance-{i}.log"));
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(exe);
    // Only what is set here: none of the operator's own INCIDENCIAS_* settings (an IMAP
    // mailbox, a metrics token...) leak into the measured instances.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("INCIDENCIAS_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .arg("serve")
        .env("INCIDENCIAS_DATABASE_URL", url)
        .env("INCIDENCIAS_BIND", "127.0.0.1:0")
        .env(
            "INCIDENCIAS_SMTP_URL",
            format!("smtp://127.0.0.1:{}", args.smtp_port),
        )
        .env("INCIDENCIAS_LINK_SECRET", secret)
        // One public address, as behind a load balancer: the same links from every one.
        .env("INCIDENCIAS_PUBLIC_URL", "https://incidencias.bench.gob.mx")
        .env("INCIDENCIAS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| invalid(format!("no se pudo iniciar la instancia {i}: {e}")))?;
    let name = format!("la instancia {i} (pid {})", child.id().unwrap_or_default());
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| invalid("sin salida de la instancia"))?;
    let mut lines = BufReader::new(stdout).lines();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("escuchando en ").nth(1) {
                return rest.split_whitespace().next().map(str::to_string);
            }
        }
        None
    })
    .await;
    let Ok(Some(base)) = read else {
        let _ = child.start_kill();
        return Err(invalid(format!(
            "{name} no empezó a escuchar; ver {}",
            log_path.display()
        )));
    };
    // Keep reading what it prints, so that a write to its stdout never blocks it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(((name, child), base))
}

pub(super) async fn wait_ready(
    client: &reqwest::Client,
    base: &str,
    children: &mut Children,
) -> Result<(), StoreError> {
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        children.check()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(invalid(format!("{base}/readyz no respondió 200")))
}
