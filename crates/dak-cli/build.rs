//! Give the binaries a run-time search path to the libtorch they were
//! linked against (the project venv's torch/lib), so `dak-*` start without
//! LD_LIBRARY_PATH. LD_LIBRARY_PATH still wins (RUNPATH is searched after
//! it), which is how the GPU machine points them at its own torch.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
}
