//! Loading libtorch's CUDA backend, and why it would not load. Its own file because everything
//! that may touch a device calls it first (the device report, precision's autocast, model
//! constructors), and it depends on none of them.

use std::sync::OnceLock;

/// Folder holding `libtorch_cuda.so`, recorded by `build.rs` from torch-sys.
const TORCH_LIB_DIR: &str = env!("BERT_FINETUNE_TORCH_LIB");

/// Makes sure libtorch's CUDA backend is loaded before anyone asks for a GPU.
///
/// Binaries keep `libtorch_cuda` linked (`build.rs` passes `--no-as-needed`), but evcxr links
/// cells with its own flags and the as-needed default drops the library, which would make a
/// GPU machine look CPU-only. Opening the library by hand registers its CUDA hooks either way;
/// a libtorch without CUDA simply has no such file and nothing happens.
///
/// libtorch decides once per process whether CUDA exists (the first seed or device query
/// does), so every entry point that may touch a device calls this first: model constructors,
/// the optimizer, training, [`manual_seed`](super::device::manual_seed),
/// [`detect`](super::device::detect).
pub fn ensure_cuda_backend() {
    let _ = cuda_load_error();
}

/// Why `libtorch_cuda.so` would not load, when the file exists but `dlopen` failed (missing
/// CUDA libraries, a driver mismatch); `None` when it loaded or libtorch has no CUDA build.
pub fn cuda_load_error() -> Option<&'static str> {
    static LOAD: OnceLock<Option<String>> = OnceLock::new();
    LOAD.get_or_init(|| {
        let mut error = None;
        let candidates = [
            "libtorch_cuda.so".to_string(),
            format!("{TORCH_LIB_DIR}/libtorch_cuda.so"),
        ];
        for name in candidates {
            let exists = std::path::Path::new(&name).exists();
            let Ok(c_name) = std::ffi::CString::new(name.clone()) else {
                continue;
            };
            // SAFETY: dlopen with a valid C string; the handle is deliberately never closed.
            let handle =
                unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if !handle.is_null() {
                return None;
            }
            if exists {
                // SAFETY: dlerror returns NULL or a NUL-terminated message valid until the
                // next dl* call on this thread; it is copied out at once.
                let message = unsafe {
                    let e = libc::dlerror();
                    (!e.is_null())
                        .then(|| std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned())
                };
                error = Some(format!(
                    "{name} exists but does not load: {}",
                    message.unwrap_or_else(|| "no reason given".into())
                ));
            }
        }
        error
    })
    .as_deref()
}
