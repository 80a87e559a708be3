//! Links binaries and tests against the libtorch that torch-sys found (the venv's PyPI wheel).
//!
//! * an rpath to `torch/lib`, so binaries run without `LD_LIBRARY_PATH`;
//! * `libtorch_cuda` linked with `--no-as-needed`, since nothing references its symbols
//!   directly and the default as-needed linking would drop it, leaving a GPU machine on the CPU;
//! * the library folder as `BERT_FINETUNE_TORCH_LIB`, for code that must load CUDA at run time
//!   (evcxr links notebook cells with its own flags, outside this script's reach).

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let lib = env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    println!("cargo:rustc-env=BERT_FINETUNE_TORCH_LIB={lib}");
    if lib.is_empty() {
        return;
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
