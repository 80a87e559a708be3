//! Links binaries and tests against the libtorch that torch-sys found (the venv's PyPI wheel),
//! and compiles the C++ shim against the same headers.
//!
//! * `csrc/shim.cpp` (fused AdamW, foreach clipping, autocast dtype, matmul precision, an
//!   operator counter), `csrc/dropout.cpp` (the CPU dropout's mask, libtorch's own numbers
//!   drawn in blocks) and `csrc/distributed.cpp` (c10d's TCPStore and Gloo process group)
//!   with torch-sys's flags: C++17, the C++11 ABI, `torch/include` and
//!   `torch/include/torch/csrc/api/include`, plus `USE_C10D_GLOO` and gloo's headers;
//! * an rpath to `torch/lib`, so binaries run without `LD_LIBRARY_PATH`;
//! * `libtorch_cuda` linked with `--no-as-needed`, since nothing references its symbols
//!   directly and the default as-needed linking would drop it, leaving a GPU machine on the CPU;
//! * the library folder as `BERT_FINETUNE_TORCH_LIB`, for code that must load CUDA at run time
//!   (evcxr links notebook cells with its own flags, outside this script's reach).

use std::env;
use std::path::Path;

/// Where Debian's libgloo-dev puts gloo's headers (torch's ProcessGroupGloo.hpp includes them).
const GLOO_HEADERS: &str = "/usr/include/gloo";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    println!("cargo:rerun-if-changed=csrc/dropout.cpp");
    println!("cargo:rerun-if-changed=csrc/distributed.cpp");
    println!("cargo:rerun-if-changed=csrc/nccl.cpp");
    println!("cargo:rerun-if-changed=csrc/guarded.hpp");
    let lib = env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    println!("cargo:rustc-env=BERT_FINETUNE_TORCH_LIB={lib}");
    let Some(torch) = Path::new(&lib).parent().filter(|_| !lib.is_empty()) else {
        panic!(
            "torch-sys did not report its libtorch folder (DEP_TCH_LIBTORCH_LIB), so the C++ \
             shim cannot find the ATen headers; build with scripts/env.sh sourced"
        );
    };
    let include = torch.join("include");
    if !include.join("ATen/ATen.h").exists() {
        panic!(
            "no ATen headers under {}: the C++ shim needs the libtorch headers (the PyPI torch \
             wheel ships them)",
            include.display()
        );
    }
    if !Path::new(GLOO_HEADERS).join("algorithm.h").exists() {
        panic!(
            "no gloo headers in {GLOO_HEADERS}: the process group (csrc/distributed.cpp) \
             includes torch's ProcessGroupGloo.hpp, which needs them; install Debian's \
             libgloo-dev (scripts/setup does)"
        );
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("csrc/shim.cpp")
        .file("csrc/dropout.cpp")
        .file("csrc/distributed.cpp")
        .file("csrc/nccl.cpp")
        .std("c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_C10D_GLOO", None)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .warnings(false);
    // NCCL: the wheel's ProcessGroupNCCL.hpp needs nccl.h and the CUDA headers, all in the
    // venv beside torch (nvidia/nccl, nvidia/cu13 with nvidia-cuda-cccl, triton's crt/), and
    // a libtorch_cuda to link against. Without them nccl.cpp compiles to a stub that says so.
    let site = torch.parent().unwrap_or(torch);
    let nccl_headers = [
        site.join("nvidia/nccl/include"),
        site.join("nvidia/cu13/include"),
        site.join("triton/backends/nvidia/include"),
    ];
    let has_cuda = Path::new(&lib).join("libtorch_cuda.so").exists()
        && nccl_headers[0].join("nccl.h").exists()
        && nccl_headers[1].join("nv/target").exists()
        && nccl_headers[2].join("crt/host_config.h").exists();
    if has_cuda {
        build
            .define("USE_C10D_NCCL", None)
            .define("BF_WITH_NCCL", None);
        for dir in &nccl_headers {
            build.include(dir);
        }
    } else {
        println!(
            "cargo:warning=NCCL process group not built: libtorch_cuda, nccl.h or the CUDA \
             headers (nvidia-cuda-cccl, triton) are missing beside {}",
            torch.display()
        );
    }
    build.compile("bert_finetune_shim");

    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
