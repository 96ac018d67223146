//! The C engine behind a safe wrapper. The only unsafe code of the workspace lives here.
//!
//! Why it is sound: the engine's model is read-only after `e5_load` (the weights are a
//! read-only mmap, every call allocates its own scratch), so one model may embed on several
//! threads at once; the function pointers are copied out of libraries this struct keeps
//! loaded for as long as it lives; every buffer handed to C is sized to what the header says
//! it writes (n × dim floats).
#![allow(unsafe_code)]

use crate::EmbeddingError;
use crate::package::ModelFiles;
use libloading::Library;
use std::ffi::{CString, c_char, c_int, c_void};

type Load = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void);
type Dim = unsafe extern "C" fn(*const c_void) -> c_int;
type EmbedOne = unsafe extern "C" fn(*mut c_void, *const c_char, c_int, *mut f32) -> c_int;
type EmbedBatch =
    unsafe extern "C" fn(*mut c_void, *const *const c_char, c_int, c_int, *mut f32) -> c_int;
type SetThreads = unsafe extern "C" fn(c_int);

pub struct Engine {
    model: *mut c_void,
    dim: usize,
    free: Free,
    embed_one: EmbedOne,
    embed_batch: EmbedBatch,
    set_threads: SetThreads,
    // Dropped after `model` is freed (see Drop); the pointers above point into these.
    _engine: Library,
    _runtime: Library,
}

// SAFETY: see the module comment: the model is immutable after load and the engine is
// re-entrant, so sharing it across threads is what its authors designed it for.
unsafe impl Send for Engine {}
unsafe impl Sync for Engine {}

fn symbol<T: Copy>(lib: &Library, name: &[u8]) -> Result<T, EmbeddingError> {
    // SAFETY: T is the C signature the header declares for that name.
    unsafe { lib.get::<T>(name).map(|s| *s) }.map_err(|e| {
        EmbeddingError::Load(format!(
            "symbol {}: {e}",
            String::from_utf8_lossy(name).trim_end_matches('\0')
        ))
    })
}

/// Opens a library that stays mapped until the process exits, even once every `Library` for it
/// is dropped. The OpenMP runtime must: threads that ran a parallel region (tokio's blocking
/// threads) keep thread-local state whose destructors live in it, and they run when such a
/// thread exits, possibly long after the last model was freed. Unmapping the runtime first
/// made those destructors jump into nothing (a SIGSEGV seen when one test process loaded and
/// dropped several models). The engine stays for the same reason, at the cost of a few MB.
fn open_for_good(path: &std::path::Path) -> Result<Library, EmbeddingError> {
    use libloading::os::unix::{Library as UnixLibrary, RTLD_NOW};
    // SAFETY: the library was checked against a pinned sha256 sum; its initialisers are the
    // OpenMP runtime's and the engine's (none that takes locks we hold).
    unsafe { UnixLibrary::open(Some(path), RTLD_NOW | libc::RTLD_NODELETE) }
        .map(Library::from)
        .map_err(|e| EmbeddingError::Load(format!("{}: {e}", path.display())))
}

impl Engine {
    pub fn load(files: &ModelFiles) -> Result<Engine, EmbeddingError> {
        let runtime = open_for_good(&files.runtime)?;
        let engine = open_for_good(&files.engine)?;
        let load: Load = symbol(&engine, b"e5_load\0")?;
        let dim: Dim = symbol(&engine, b"e5_dim\0")?;
        let free: Free = symbol(&engine, b"e5_free\0")?;
        let embed_one: EmbedOne = symbol(&engine, b"e5_embed\0")?;
        let embed_batch: EmbedBatch = symbol(&engine, b"e5_embed_batch\0")?;
        let set_threads: SetThreads = symbol(&runtime, b"omp_set_num_threads\0")?;
        let path = CString::new(files.weights.as_os_str().as_encoded_bytes())
            .map_err(|_| EmbeddingError::Load("the weights' path holds a NUL byte".into()))?;
        // SAFETY: a NUL-terminated path; NULL is the documented failure.
        let model = unsafe { load(path.as_ptr()) };
        if model.is_null() {
            return Err(EmbeddingError::Load(format!(
                "e5_load refused {}",
                files.weights.display()
            )));
        }
        // SAFETY: a model e5_load returned.
        let dim = unsafe { dim(model) };
        let engine = Engine {
            model,
            dim: usize::try_from(dim).unwrap_or(0),
            free,
            embed_one,
            embed_batch,
            set_threads,
            _engine: engine,
            _runtime: runtime,
        };
        if engine.dim == 0 {
            return Err(EmbeddingError::Load(format!("e5_dim answered {dim}")));
        }
        Ok(engine)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// OpenMP threads for the calling thread's next calls (its own setting, not the process's).
    pub fn set_threads(&self, n: usize) {
        let n = c_int::try_from(n.max(1)).unwrap_or(c_int::MAX);
        // SAFETY: plain integer argument.
        unsafe { (self.set_threads)(n) }
    }

    /// Embeds `texts` (already free of NUL bytes) into n × dim floats, row-major.
    pub fn embed(&self, texts: &[CString], is_query: bool) -> Result<Vec<f32>, EmbeddingError> {
        let mut out = vec![0f32; texts.len() * self.dim];
        if texts.is_empty() {
            return Ok(out);
        }
        let n = c_int::try_from(texts.len())
            .map_err(|_| EmbeddingError::Embed("too many texts in one batch".into()))?;
        if let [text] = texts {
            // One text: the engine parallelises inside it (lower latency than a batch of one).
            // SAFETY: a valid C string; `out` holds dim floats, what e5_embed writes.
            let rc = unsafe {
                (self.embed_one)(
                    self.model,
                    text.as_ptr(),
                    c_int::from(is_query),
                    out.as_mut_ptr(),
                )
            };
            if rc != 0 {
                return Err(EmbeddingError::Embed(format!("e5_embed returned {rc}")));
            }
            return Ok(out);
        }
        let ptrs: Vec<*const c_char> = texts.iter().map(|t| t.as_ptr()).collect();
        // SAFETY: `ptrs` holds n valid C strings that outlive the call; `out` holds n × dim
        // floats, which is what e5_embed_batch writes.
        let rc = unsafe {
            (self.embed_batch)(
                self.model,
                ptrs.as_ptr(),
                n,
                c_int::from(is_query),
                out.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(EmbeddingError::Embed(format!(
                "e5_embed_batch returned {rc}"
            )));
        }
        Ok(out)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the model came from e5_load and is freed once; the libraries drop after.
        unsafe { (self.free)(self.model) }
    }
}

/// Lowers the calling thread's priority to `nice` (Linux: `nice` is per thread, and threads it
/// starts, the engine's OpenMP team among them, inherit it). Returns whether it worked.
pub fn lower_thread_priority(nice: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain integers; `who = 0` is the calling thread on Linux.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = nice;
        false
    }
}
