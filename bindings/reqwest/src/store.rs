//! Where credentials live between refreshes and between runs (contract §12).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use reauth::Secret;

/// Credentials as stored, with the expiry as wall-clock time (contract §12.1): the type,
/// its conversions and the refresh recipe live in `reauth-host`, shared by every adapter.
pub use reauth_host::StoredCredentials;

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
    /// How long the lock outlives a holder that stopped answering, for a store whose
    /// lock expires (a fleet's, in a database); `None` if it never does. The adapter
    /// refuses a store whose lock would expire before the refresh deadline.
    fn lock_ttl(&self) -> Option<std::time::Duration> {
        None
    }
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
    fn lock_ttl(&self) -> Option<std::time::Duration> {
        (**self).lock_ttl()
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
/// Python and Kotlin packages' `FileStore`, and the same protocol.
///
/// A save writes `PATH.tmp` (created with mode 0600), flushes it to disk, renames it over
/// the file and flushes the directory, so a reader never sees half a write. The temporary
/// file has that one fixed name, and it is written, renamed or removed only by a process
/// holding an exclusive lock on it (`File::lock`, an advisory `flock` on Unix), checked
/// once locked to still be the file named `PATH.tmp`; saves so never wait for a refresh,
/// only for each other. A process killed mid-save (SIGKILL runs no cleanup) leaves at
/// most that one file, which the next save overwrites and the next load or clear
/// removes. `PATH.lock` is the cross-process lock held around refreshes
/// ([`lock`](CredentialStore::lock)).
///
/// A file that is not a credentials file is an [`io::ErrorKind::InvalidData`] error
/// naming the file and the field, never the tokens; loading a file other users can read
/// or write emits a `tracing` warning.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    /// The group/other mode last warned about (0: none), so that the load before every
    /// refresh does not repeat the warning.
    warned_mode: AtomicU32,
}

impl FileStore {
    /// A store at `path` (created on the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore {
            path: path.into(),
            warned_mode: AtomicU32::new(0),
        }
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

    /// `PATH.tmp` under an exclusive lock, checked to still be the file of that name;
    /// `None` if there is none (`create` false) or, not `blocking`, a live save holds it.
    /// A symbolic link there is removed, never followed.
    fn open_tmp(&self, tmp: &Path, create: bool, blocking: bool) -> io::Result<Option<File>> {
        for _ in 0..100 {
            match std::fs::symlink_metadata(tmp) {
                Ok(m) if m.file_type().is_symlink() => {
                    remove_if_exists(tmp)?;
                    continue;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let mut options = OpenOptions::new();
            options
                .read(true)
                .write(true)
                .create(create)
                .truncate(false);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = match options.open(tmp) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
                Err(e) => return Err(e),
            };
            if blocking {
                file.lock()?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => return Err(e),
                }
            }
            match std::fs::symlink_metadata(tmp) {
                Ok(named) if same_file(&named, &file.metadata()?) => return Ok(Some(file)),
                // Renamed or removed by its holder while we waited: again.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "{}: the temporary file keeps changing",
            tmp.display()
        )))
    }

    /// Removes what a save killed before its rename left (token text).
    fn remove_leftover(&self, blocking: bool) -> io::Result<()> {
        let tmp = self.sibling(".tmp");
        if std::fs::symlink_metadata(&tmp).is_err() {
            return Ok(()); // the usual case: nothing to do, nothing locked
        }
        if let Some(file) = self.open_tmp(&tmp, false, blocking)? {
            remove_if_exists(&tmp)?;
            drop(file); // releases the lock
        }
        Ok(())
    }

    #[cfg(unix)]
    fn check_mode(&self, metadata: &std::fs::Metadata) {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            self.warned_mode.store(0, Ordering::Relaxed);
        } else if self.warned_mode.swap(mode, Ordering::Relaxed) != mode {
            tracing::warn!(
                "reauth: {} has mode {mode:04o}: other users can read or change the tokens in it; run chmod 600 {}",
                self.path.display(),
                self.path.display(),
            );
        }
    }

    #[cfg(not(unix))]
    fn check_mode(&self, _: &std::fs::Metadata) {}
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.is_file() && b.is_file() && a.created().ok() == b.created().ok()
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes a rename in `path`'s directory durable, where the platform allows (best effort).
fn sync_directory(path: &Path) {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// What a save writes: the three packages' format, in this order.
#[derive(serde::Serialize)]
struct FileFormat<'a> {
    access_token: &'a str,
    refresh_token: Option<&'a str>,
    /// Seconds since the Unix epoch.
    expires_at: Option<f64>,
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {why}", path.display()),
    )
}

/// The JSON type of `value`, for an error message: never its content.
fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(s) if s.is_empty() => "an empty string",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The stored credentials in `bytes`; an error naming `path` and the field at fault,
/// never a token's text.
fn parse(path: &Path, bytes: &[u8]) -> io::Result<StoredCredentials> {
    use serde_json::Value;
    let raw: Value = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        // A syntax error's message names what was expected and where, not the text.
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            invalid(path, format!("not a credentials file (invalid JSON: {e})"))
        }
        _ => invalid(path, "not a credentials file (invalid JSON)"),
    })?;
    let Value::Object(mut raw) = raw else {
        return Err(invalid(
            path,
            format!(
                "not a credentials file (the JSON is {}, not an object)",
                json_type(&raw)
            ),
        ));
    };
    let access_token = match raw.remove("access_token") {
        None => return Err(invalid(path, r#"field "access_token" is missing"#)),
        Some(Value::String(s)) if !s.is_empty() => Secret::new(s),
        Some(other) => {
            return Err(invalid(
                path,
                format!(
                    r#"field "access_token" must be a non-empty string, got {}"#,
                    json_type(&other)
                ),
            ));
        }
    };
    let refresh_token = match raw.remove("refresh_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Secret::new(s)),
        Some(other) => {
            return Err(invalid(
                path,
                format!(
                    r#"field "refresh_token" must be a string or null, got {}"#,
                    json_type(&other)
                ),
            ));
        }
    };
    let expires_at = match raw.remove("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            // Seconds since the Unix epoch, as the Python package writes them.
            let seconds = n.as_f64().filter(|s| s.is_finite());
            let at = seconds.and_then(|s| {
                let magnitude = Duration::try_from_secs_f64(s.abs()).ok()?;
                if s >= 0.0 {
                    UNIX_EPOCH.checked_add(magnitude)
                } else {
                    UNIX_EPOCH.checked_sub(magnitude)
                }
            });
            Some(at.ok_or_else(|| invalid(path, r#"field "expires_at" is out of range"#))?)
        }
        Some(other) => {
            return Err(invalid(
                path,
                format!(
                    r#"field "expires_at" must be a number or null, got {}"#,
                    json_type(&other)
                ),
            ));
        }
    };
    Ok(StoredCredentials {
        access_token,
        refresh_token,
        expires_at,
    })
}

impl CredentialStore for FileStore {
    fn load(&self) -> io::Result<Option<StoredCredentials>> {
        // Best effort: a live save may hold it; the next save or clear takes care of it.
        let _ = self.remove_leftover(false);
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        self.check_mode(&file.metadata()?);
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        parse(&self.path, &bytes).map(Some)
    }

    fn save(&self, credentials: &StoredCredentials) -> io::Result<()> {
        let expires_at = credentials
            .expires_at
            .map(|t| match t.duration_since(UNIX_EPOCH) {
                Ok(after) => after.as_secs_f64(),
                Err(before) => -before.duration().as_secs_f64(),
            });
        let body = serde_json::to_vec(&FileFormat {
            access_token: credentials.access_token.expose(),
            refresh_token: credentials.refresh_token.as_ref().map(|r| r.expose()),
            expires_at,
        })
        .map_err(io::Error::other)?;
        let tmp = self.sibling(".tmp");
        let mut file = self
            .open_tmp(&tmp, true, true)?
            .ok_or_else(|| io::Error::other(format!("{}: could not create it", tmp.display())))?;
        let written = (|| {
            #[cfg(unix)] // a leftover of ours is 0600 already; make sure
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            file.set_len(0)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp); // still ours: the lock is held
        }
        drop(file); // releases the lock
        written?;
        sync_directory(&self.path);
        Ok(())
    }

    fn clear(&self) -> io::Result<()> {
        remove_if_exists(&self.path)?;
        self.remove_leftover(true)?;
        sync_directory(&self.path);
        Ok(())
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
    use std::io::{BufRead, BufReader};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::SystemTime;

    /// An empty directory of this test's own.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("reauth-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The files in `dir` other than `except` that hold "SECRET", the text of every token
    /// these tests write.
    fn holding_token_text(dir: &Path, except: &str) -> Vec<String> {
        names(dir)
            .into_iter()
            .filter(|n| n != except)
            .filter(|n| {
                let bytes = std::fs::read(dir.join(n)).unwrap_or_default();
                bytes.windows(6).any(|w| w == b"SECRET")
            })
            .collect()
    }

    fn secret_credentials(i: u64) -> StoredCredentials {
        StoredCredentials {
            access_token: Secret::new(format!("at-SECRET-{i}")),
            refresh_token: Some(Secret::new(format!("rt-SECRET-{i}"))),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i)),
        }
    }

    #[test]
    fn file_store_round_trip_is_private_and_reads_the_other_packages_format() {
        let dir = scratch("round-trip");
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
        assert_eq!(names(&dir), ["credentials.json", "credentials.json.lock"]);
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

    /// Run by [`a_kill_during_a_save_leaves_no_token_text_after_the_next_operation`] in a
    /// child process (this test binary again): saves in a loop until killed. A no-op
    /// otherwise.
    #[test]
    fn save_loop_child() {
        let Some(path) = std::env::var_os(SAVE_LOOP_CHILD) else {
            return;
        };
        let store = FileStore::new(path);
        for i in 0.. {
            store.save(&secret_credentials(i)).expect("save");
            if i == 0 {
                println!("{SAVE_LOOP_STARTED}"); // after libtest's "test … " on that line
                io::stdout().flush().expect("flush");
            }
        }
    }

    const SAVE_LOOP_CHILD: &str = "REAUTH_TEST_SAVE_LOOP_CHILD";
    const SAVE_LOOP_STARTED: &str = "save loop started";

    #[test]
    fn a_kill_during_a_save_leaves_no_token_text_after_the_next_operation() {
        // SIGKILL runs no cleanup: whatever a kill mid-save leaves, the store file is
        // whole, and after one more load, save or clear no other file holds token text.
        let dir = scratch("kill");
        let path = dir.join("credentials.json");
        let store = FileStore::new(&path);
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() | 1);
        let mut rng = u64::from(seed);
        let (kills, mut mid_save) = (40, 0);
        for kill in 0..kills {
            let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
                .args(["--exact", "store::tests::save_loop_child", "--nocapture"])
                .args(["--test-threads", "1"])
                .env(SAVE_LOOP_CHILD, &path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn");
            let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            let started = lines.any(|l| l.is_ok_and(|l| l.ends_with(SAVE_LOOP_STARTED)));
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            std::thread::sleep(Duration::from_micros(rng % 10_000));
            child.kill().expect("kill"); // SIGKILL on Unix
            child.wait().expect("wait");
            assert!(started, "the child never saved");
            let others = names(&dir)
                .into_iter()
                .filter(|n| n != "credentials.json" && n != "credentials.json.lock")
                .collect::<Vec<_>>();
            mid_save += usize::from(!others.is_empty());
            // Atomic replace: the store file is never half a write.
            let whole: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("whole");
            assert!(whole["access_token"].is_string(), "seed {seed}");
            let operation = match kill % 3 {
                0 => {
                    store.load().expect("load");
                    "load"
                }
                1 => {
                    store.save(&secret_credentials(999_999)).expect("save");
                    "save"
                }
                _ => {
                    store.clear().expect("clear");
                    "clear"
                }
            };
            let leaking = holding_token_text(&dir, "credentials.json");
            assert!(
                leaking.is_empty(),
                "kill {kill} left {others:?}; after {operation}: {leaking:?} hold token text (seed {seed})"
            );
        }
        assert!(
            mid_save > 0,
            "no kill landed mid-save in {kills} (seed {seed}): the test proved nothing"
        );
        println!("{mid_save} of {kills} kills landed mid-save");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_leftover_temporary_file_is_removed_by_the_next_load_save_or_clear() {
        let dir = scratch("leftover");
        let path = dir.join("credentials.json");
        let store = FileStore::new(&path);
        let tmp = dir.join("credentials.json.tmp");
        for operation in ["load", "save", "clear"] {
            store.save(&secret_credentials(1)).expect("save");
            // What a save killed before its rename leaves: a whole or a partial write.
            std::fs::write(&tmp, r#"{"access_token": "at-SECRET-killed", "refr"#).expect("tmp");
            match operation {
                "load" => assert_eq!(store.load().expect("load"), Some(secret_credentials(1))),
                "save" => store.save(&secret_credentials(2)).expect("save"),
                _ => store.clear().expect("clear"),
            }
            assert_eq!(
                holding_token_text(&dir, "credentials.json"),
                Vec::<String>::new(),
                "after {operation}"
            );
            assert!(!tmp.exists(), "after {operation}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn concurrent_saves_share_one_temporary_file_and_readers_see_whole_files() {
        // Separate stores on one path: each `flock` is its own, as in separate processes.
        let dir = scratch("concurrent");
        let path = dir.join("credentials.json");
        let (writers, saves) = (4, 25);
        let barrier = Arc::new(Barrier::new(writers + 1));
        let done = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..writers as u64)
            .map(|w| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let store = FileStore::new(path);
                    barrier.wait();
                    for i in 0..saves {
                        store.save(&secret_credentials(w * 1000 + i)).expect("save");
                    }
                })
            })
            .collect();
        let reader = {
            let (path, done) = (path.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let store = FileStore::new(path);
                barrier.wait();
                while !done.load(Ordering::Relaxed) {
                    if let Some(c) = store.load().expect("a whole file") {
                        assert!(c.access_token.expose().starts_with("at-SECRET-"));
                    }
                }
            })
        };
        for t in threads {
            t.join().expect("writer");
        }
        done.store(true, Ordering::Relaxed);
        reader.join().expect("reader");
        // One fixed temporary name, gone after every save: only the store is left.
        assert_eq!(names(&dir), ["credentials.json"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_in_place_of_the_temporary_file_is_never_written_through() {
        let dir = scratch("symlink");
        let path = dir.join("credentials.json");
        let elsewhere = dir.join("elsewhere");
        std::fs::write(&elsewhere, "untouched").expect("write");
        std::os::unix::fs::symlink(&elsewhere, dir.join("credentials.json.tmp")).expect("link");
        let store = FileStore::new(&path);
        store.save(&secret_credentials(1)).expect("save");
        assert_eq!(
            std::fs::read_to_string(&elsewhere).expect("read"),
            "untouched"
        );
        assert_eq!(store.load().expect("load"), Some(secret_credentials(1)));
        assert_eq!(names(&dir), ["credentials.json", "elsewhere"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_store_names_the_file_and_the_field_never_the_tokens() {
        let dir = scratch("corrupt");
        let path = dir.join("credentials.json");
        let store = FileStore::new(&path);
        for (body, message) in [
            (
                r#"{"access_token": "at-SECRET", "refresh_token": 5}"#,
                r#"field "refresh_token" must be a string or null, got a number"#,
            ),
            (
                r#"{"access_token": "at-SECRET", "refresh_token": true}"#,
                r#"field "refresh_token" must be a string or null, got a boolean"#,
            ),
            (
                r#"{"refresh_token": "rt-SECRET"}"#,
                r#"field "access_token" is missing"#,
            ),
            (
                r#"{"access_token": null, "refresh_token": "rt-SECRET"}"#,
                r#"field "access_token" must be a non-empty string, got null"#,
            ),
            (
                r#"{"access_token": 5, "refresh_token": "rt-SECRET"}"#,
                r#"field "access_token" must be a non-empty string, got a number"#,
            ),
            (
                r#"{"access_token": "", "refresh_token": "rt-SECRET"}"#,
                r#"field "access_token" must be a non-empty string, got an empty string"#,
            ),
            (
                r#"{"access_token": ["at-SECRET"]}"#,
                r#"field "access_token" must be a non-empty string, got an array"#,
            ),
            (
                r#"{"access_token": "at-SECRET", "expires_at": "rt-SECRET"}"#,
                r#"field "expires_at" must be a number or null, got a string"#,
            ),
            (
                r#"{"access_token": "at-SECRET", "expires_at": {"rt": "SECRET"}}"#,
                r#"field "expires_at" must be a number or null, got an object"#,
            ),
            (
                r#"{"access_token": "at-SECRET", "expires_at": false}"#,
                r#"field "expires_at" must be a number or null, got a boolean"#,
            ),
            (
                r#"{"access_token": "at-SECRET", "expires_at": 1e300}"#,
                r#"field "expires_at" is out of range"#,
            ),
            (
                r#"["at-SECRET"]"#,
                "not a credentials file (the JSON is an array, not an object)",
            ),
            (
                r#"{"access_token": "at-SECRET""#,
                "not a credentials file (invalid JSON",
            ),
            ("\"at-SECRET\u{0}\"", "not a credentials file (invalid JSON"),
        ] {
            std::fs::write(&path, body).expect("write");
            let e = store.load().expect_err(body);
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{body}");
            let expected = format!("{}: {message}", path.display());
            assert!(e.to_string().starts_with(&expected), "{e} for {body}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
        std::fs::write(&path, r#"{"access_token": "at", "expires_at": -1.5}"#).expect("write");
        assert_eq!(
            store
                .load()
                .expect("before 1970")
                .and_then(|c| c.expires_at),
            Some(UNIX_EPOCH - Duration::from_millis(1_500))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The messages of the `tracing` events emitted while `f` runs, on this thread.
    fn warnings_during(f: impl FnOnce()) -> Vec<String> {
        use tracing::field::{Field, Visit};
        use tracing::span::{Attributes, Id, Record};
        use tracing::{Event, Level, Metadata, Subscriber};

        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<String>>>);
        struct Message<'a>(&'a mut String);
        impl Visit for Message<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        impl Subscriber for Capture {
            fn enabled(&self, metadata: &Metadata<'_>) -> bool {
                *metadata.level() <= Level::WARN
            }
            fn new_span(&self, _: &Attributes<'_>) -> Id {
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, event: &Event<'_>) {
                let mut message = String::new();
                event.record(&mut Message(&mut message));
                self.0.lock().expect("capture").push(message);
            }
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), f);
        capture.0.lock().expect("capture").clone()
    }

    #[cfg(unix)]
    #[test]
    fn loading_a_store_others_can_read_warns_once_per_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let path = dir.join("credentials.json");
        let store = FileStore::new(&path);
        store.save(&secret_credentials(1)).expect("save");
        let chmod = |mode| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        let warnings = warnings_during(|| {
            store.load().expect("load"); // 0600: nothing to say
            chmod(0o644);
            store.load().expect("load");
            store.load().expect("load"); // loaded on every refresh: said once is enough
            chmod(0o660);
            store.load().expect("load"); // ...until the mode changes
        });
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let shown = path.display().to_string();
        assert!(
            warnings[0].contains(&shown) && warnings[0].contains("0644"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("chmod 600"), "{warnings:?}");
        assert!(warnings[1].contains("0660"), "{warnings:?}");
        assert!(!warnings.concat().contains("SECRET"));
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
