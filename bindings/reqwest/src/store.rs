//! Where credentials live between refreshes and between runs (contract §12).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reauth::{Credentials, Secret};

/// Credentials as stored, with the access token's expiry as wall-clock time — never as
/// the lifetime the server stated: a monotonic clock does not survive a restart
/// (contract §12.1). `Debug` redacts the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredentials {
    /// The access token.
    pub access_token: Secret,
    /// The refresh token, if the session has one.
    pub refresh_token: Option<Secret>,
    /// When the access token expires; `None` if never.
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl StoredCredentials {
    /// What to store for `credentials` received now.
    pub fn from_credentials(credentials: &Credentials, now: SystemTime) -> Self {
        StoredCredentials {
            access_token: credentials.access_token.clone(),
            refresh_token: credentials.refresh_token.clone(),
            expires_at: credentials
                .expires_in_ms
                .and_then(|ms| now.checked_add(Duration::from_millis(ms))),
        }
    }

    /// Credentials to log in (or report a refresh) with: the lifetime is what is left of
    /// the stored expiry, 0 if it passed — the token is then refreshed before any request
    /// uses it.
    pub fn to_credentials(&self, now: SystemTime) -> Credentials {
        let mut c = Credentials::new(self.access_token.clone());
        c.refresh_token = self.refresh_token.clone();
        c.expires_in_ms = self.expires_at.map(|at| {
            at.duration_since(now).map_or(0, |left| {
                u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
            })
        });
        c
    }
}

/// A place for credentials. [`lock`](CredentialStore::lock) is held around every refresh
/// (and the re-read after a rejection) so that several processes sharing one store never
/// present the same refresh token twice (contract §12.2). It may block.
pub trait CredentialStore: Send + Sync + 'static {
    /// The stored credentials, if any.
    fn load(&self) -> io::Result<Option<StoredCredentials>>;
    /// Replaces the stored credentials.
    fn save(&self, credentials: &StoredCredentials) -> io::Result<()>;
    /// Forgets them (on logout).
    fn clear(&self) -> io::Result<()>;
    /// Exclusive access until the returned guard is dropped.
    fn lock(&self) -> io::Result<Box<dyn Send>>;
}

/// A shared store: keep an `Arc` to inspect what the middleware stored.
impl<T: CredentialStore + ?Sized> CredentialStore for std::sync::Arc<T> {
    fn load(&self) -> io::Result<Option<StoredCredentials>> {
        (**self).load()
    }
    fn save(&self, credentials: &StoredCredentials) -> io::Result<()> {
        (**self).save(credentials)
    }
    fn clear(&self) -> io::Result<()> {
        (**self).clear()
    }
    fn lock(&self) -> io::Result<Box<dyn Send>> {
        (**self).lock()
    }
}

/// Credentials in this process only (the default). Its lock is a no-op: within one
/// process the coordinator already runs one refresh at a time.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<Option<StoredCredentials>>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

impl CredentialStore for MemoryStore {
    fn load(&self) -> io::Result<Option<StoredCredentials>> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn save(&self, credentials: &StoredCredentials) -> io::Result<()> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(credentials.clone());
        Ok(())
    }

    fn clear(&self) -> io::Result<()> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    fn lock(&self) -> io::Result<Box<dyn Send>> {
        Ok(Box::new(()))
    }
}

/// Credentials in a JSON file shared by several processes — the same format as the
/// Python and Kotlin packages' `FileStore`. Writes go to a temporary file next to it
/// (mode 0600) and replace it atomically; `PATH.lock` is the cross-process lock
/// (`File::lock`, an advisory `flock` on Unix).
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FileFormat {
    access_token: String,
    refresh_token: Option<String>,
    /// Seconds since the Unix epoch.
    expires_at: Option<f64>,
}

impl FileStore {
    /// A store at `path` (created on the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: not a credentials file ({why})", path.display()),
    )
}

impl CredentialStore for FileStore {
    fn load(&self) -> io::Result<Option<StoredCredentials>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // serde_json's message names line and column, never the token text.
        let raw: FileFormat = serde_json::from_str(&text).map_err(|e| invalid(&self.path, e))?;
        if raw.access_token.is_empty() {
            return Err(invalid(&self.path, "empty access_token"));
        }
        let expires_at = match raw.expires_at {
            Some(s) if s.is_finite() && s >= 0.0 => Some(UNIX_EPOCH + Duration::from_secs_f64(s)),
            Some(_) => return Err(invalid(&self.path, "bad expires_at")),
            None => None,
        };
        Ok(Some(StoredCredentials {
            access_token: Secret::new(raw.access_token),
            refresh_token: raw.refresh_token.map(Secret::new),
            expires_at,
        }))
    }

    fn save(&self, credentials: &StoredCredentials) -> io::Result<()> {
        let body = serde_json::to_vec(&FileFormat {
            access_token: credentials.access_token.expose().to_owned(),
            refresh_token: credentials
                .refresh_token
                .as_ref()
                .map(|r| r.expose().to_owned()),
            expires_at: credentials
                .expires_at
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64()),
        })
        .map_err(io::Error::other)?;
        let tmp = self.sibling(&format!(".{}.tmp", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = (|| {
            let mut file = options.open(&tmp)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    fn clear(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn lock(&self) -> io::Result<Box<dyn Send>> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.sibling(".lock"))?;
        file.lock()?;
        Ok(Box::new(file)) // closing the file releases the lock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trip_is_private_and_reads_the_other_packages_format() {
        let dir = std::env::temp_dir().join(format!("reauth-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = FileStore::new(dir.join("credentials.json"));
        assert!(store.load().expect("load").is_none());
        let stored = StoredCredentials {
            access_token: Secret::new("at-1"),
            refresh_token: Some(Secret::new("rt-1")),
            expires_at: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)),
        };
        let guard = store.lock().expect("lock");
        store.save(&stored).expect("save");
        drop(guard);
        assert_eq!(store.load().expect("load"), Some(stored.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{stored:?}").contains("at-1"));
        std::fs::write(
            store.path(),
            r#"{"access_token": "at", "refresh_token": null, "expires_at": 1700000000.25}"#,
        )
        .expect("write");
        assert_eq!(
            store.load().expect("python format").map(|s| s.expires_at),
            Some(Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)))
        );
        std::fs::write(store.path(), "not json").expect("write");
        let e = store.load().expect_err("foreign file");
        assert!(e.to_string().contains("not a credentials file"), "{e}");
        store.clear().expect("clear");
        store.clear().expect("twice");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stored_expiry_survives_a_restart() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut stored = StoredCredentials {
            access_token: Secret::new("at"),
            refresh_token: None,
            expires_at: Some(now + Duration::from_secs(10)),
        };
        assert_eq!(stored.to_credentials(now).expires_in_ms, Some(10_000));
        stored.expires_at = Some(now - Duration::from_secs(10));
        assert_eq!(stored.to_credentials(now).expires_in_ms, Some(0));
    }
}
