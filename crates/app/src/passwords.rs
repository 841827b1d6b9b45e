//! Password hashing (Argon2id, the `password-auth` format) on a small fixed pool whose
//! memory is reused, so that logins cannot make the process grow.
//!
//! Each Argon2id hash works through 19 MiB of memory. Hashed on `spawn_blocking` threads
//! with a fresh allocation each time, glibc keeps the freed blocks in each thread's arena
//! (after the first free it also raises its mmap threshold above 19 MiB), and a burst of
//! logins left hundreds of MiB resident for good. Here at most [`WORKERS`] hashes run at
//! once, each on one of [`WORKERS`] buffers allocated once and kept: whatever the number of
//! logins, Argon2 holds `WORKERS × 19 MiB`, no more (a buffer grows only for a stored hash
//! whose parameters ask for more memory). The buffers are zeroed after every use, so no
//! state derived from a password stays in memory between hashes.
//!
//! Hashes are the PHC strings `password_auth::generate_hash` makes
//! (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), and [`verify`] accepts whatever Argon2
//! hash `password_auth::verify_password` would; the two are interchangeable.

use std::sync::{Mutex, OnceLock, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// Hashes computed at the same time; more wait their turn.
pub const WORKERS: usize = 2;

static PERMITS: Semaphore = Semaphore::const_new(WORKERS);

/// The Argon2 working memory of each worker, made on first use and kept (never more than
/// [`WORKERS`]: a buffer is taken only with a permit).
static MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Salt length, as `password_auth` (the PHC recommendation).
const SALT_BYTES: usize = 16;

/// Hashing failed (the system's random source, or a parameter Argon2 refuses).
#[derive(Debug, thiserror::Error)]
#[error("no se pudo calcular el hash de la contraseña: {0}")]
pub struct HashError(String);

/// The PHC string of an Argon2id hash of `password` with a new random salt.
pub async fn hash(password: String) -> Result<String, HashError> {
    on_pool(move |memory| hash_with(memory, password.as_bytes()))
        .await
        .unwrap_or_else(|| {
            Err(HashError(
                "la tarea de cálculo terminó antes de tiempo".into(),
            ))
        })
}

/// Whether `password` matches `hash`. Without a hash (no such account, or one without a
/// password) the check still runs, against the hash of a random secret nobody knows, and
/// answers false: the time taken does not reveal which accounts exist.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    on_pool(move |memory| match hash {
        Some(h) => verify_with(memory, password.as_bytes(), &h),
        None => {
            let decoy = decoy(memory);
            let _ = verify_with(memory, password.as_bytes(), decoy);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Runs `work` on a blocking thread with a worker's memory, once a permit is free. The
/// permit goes with the work: a caller that stops waiting does not free its place before
/// the hash is done. `None` when the work panicked.
async fn on_pool<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Option<T> {
    let permit = PERMITS.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut memory = MEMORY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let out = work(&mut memory);
        memory.fill(Block::new());
        MEMORY
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
        out
    })
    .await
    .ok()
}

/// The first `blocks` blocks of a worker's memory, grown (once) if it is shorter.
fn blocks(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        *memory = vec![Block::new(); blocks];
    }
    &mut memory[..blocks]
}

fn hash_with(memory: &mut Vec<Block>, password: &[u8]) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError(e.to_string());
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| failed(&e))?;
    let salt_string = SaltString::encode_b64(&salt).map_err(|e| failed(&e))?;
    let argon2 = Argon2::default();
    let params = argon2.params().clone();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(
            password,
            &salt,
            &mut out,
            blocks(memory, params.block_count()),
        )
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt_string.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// What `PasswordHash::verify_password` does for Argon2 (algorithm, version and
/// parameters from the hash; constant-time comparison), with a worker's memory.
fn verify_with(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let block_count = params.block_count();
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, blocks(memory, block_count))
        .is_ok()
        && Output::new(out).is_ok_and(|computed| computed == expected)
}

/// A hash of a random secret nobody knows, made once (on a worker, with its memory).
fn decoy(memory: &mut Vec<Block>) -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 32];
        let _ = getrandom::fill(&mut secret);
        hash_with(memory, &secret).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_both_ways_with_password_auth() {
        let ours = hash("una contraseña larga".into()).await.expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(password_auth::verify_password("una contraseña larga", &ours).is_ok());
        assert!(verify("una contraseña larga".into(), Some(ours.clone())).await);
        assert!(!verify("otra contraseña larga".into(), Some(ours)).await);

        let theirs = password_auth::generate_hash("una contraseña larga");
        assert!(verify("una contraseña larga".into(), Some(theirs.clone())).await);
        assert!(!verify("otra contraseña larga".into(), Some(theirs)).await);
    }

    #[tokio::test]
    async fn other_argon2_parameters_and_bad_hashes() {
        // password-auth's own test vector: argon2i, 64 MiB, one pass.
        let argon2i = "$argon2i$v=19$m=65536,t=1,p=1$c29tZXNhbHQAAAAAAAAAAA$\
                       +r0d29hqEB0yasKr55ZgICsQGSkl0v0kgwhd+U3wyRo";
        assert!(verify("password".into(), Some(argon2i.into())).await);
        assert!(!verify("bogus".into(), Some(argon2i.into())).await);
        assert!(!verify("password".into(), Some("no es un hash".into())).await);
        assert!(!verify("password".into(), Some(String::new())).await);
        assert!(!verify("password".into(), None).await);
    }
}
