//! `--device cpu|cuda[:N]`.

use tch::Device;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceChoice(pub Device);

/// Parse a device name; CUDA is checked to exist so a typo or a machine
/// without a GPU fails before any work, not in the middle of it.
pub fn parse_device(name: &str) -> Result<Device> {
    let device = match name {
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Device::Cuda(n),
            None => return Err(Error::Device(format!("unknown device `{name}`; use cpu, cuda or cuda:N"))),
        },
    };
    if let Device::Cuda(n) = device {
        let backend = load_cuda_backend();
        let count = tch::Cuda::device_count();
        if count <= n as i64 {
            let why = match (count, backend) {
                (1.., _) => format!("this machine has {count} CUDA GPU(s), numbered from cuda:0"),
                (_, Err(reason)) => format!("libtorch's CUDA backend does not load ({reason})"),
                (_, Ok(())) => "libtorch finds no CUDA GPU on this machine".to_string(),
            };
            return Err(Error::Device(format!("--device {name}: {why}; use --device cpu")));
        }
    }
    Ok(device)
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// libtorch's CUDA backend registers itself from the static initialisers of
/// `libtorch_cuda.so`, but nothing in our binaries references its symbols, so
/// the linker's `--as-needed` drops it and libtorch would see no GPU. Linking
/// it unconditionally costs every CPU start ~0.2 s and ~350 MB of mappings,
/// so it is loaded here, once, when a CUDA device is asked for, and before
/// anything asks libtorch about CUDA (libtorch caches "no CUDA" on first use).
///
/// Why the backend is not loaded, if it is not: a CPU-only libtorch has no
/// such file, and a CUDA one without its CUDA libraries fails to link it.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn load_cuda_backend() -> std::result::Result<(), String> {
    use std::sync::OnceLock;
    static LOADED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            // Found through LD_LIBRARY_PATH or the binaries' run path to the
            // libtorch they were built against.
            let name = c"libtorch_cuda.so";
            // SAFETY: a valid NUL-terminated name; the handle is kept open for the
            // life of the process (never dlclose'd), as libtorch's registries
            // point into the library.
            let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if !handle.is_null() {
                return Ok(());
            }
            // SAFETY: dlerror returns null or a NUL-terminated message that stays
            // valid until the next dl* call on this thread; it is copied at once.
            let reason = unsafe {
                let message = libc::dlerror();
                if message.is_null() {
                    "libtorch_cuda.so not found".to_string()
                } else {
                    std::ffi::CStr::from_ptr(message).to_string_lossy().into_owned()
                }
            };
            tracing::debug!("CUDA unavailable: {reason}");
            Err(reason)
        })
        .clone()
}

#[cfg(not(target_os = "linux"))]
fn load_cuda_backend() -> std::result::Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_refused_with_the_choices() {
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("cpu, cuda or cuda:N"), "{err}");
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
    }

    /// Asking for CUDA must bring libtorch's CUDA backend into the process
    /// (without it a GPU machine reports zero devices); a libtorch build
    /// without that library has nothing to load.
    #[cfg(target_os = "linux")]
    #[test]
    fn asking_for_cuda_loads_the_cuda_backend() {
        let maps = || std::fs::read_to_string("/proc/self/maps").unwrap();
        let shipped = maps()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.ends_with("/libtorch_cpu.so"))
            .map(|p| std::path::Path::new(p).with_file_name("libtorch_cuda.so"))
            .is_some_and(|p| p.exists());
        if !shipped {
            eprintln!("this libtorch has no libtorch_cuda.so; nothing to check");
            return;
        }
        let result = parse_device("cuda");
        assert!(maps().contains("/libtorch_cuda.so"), "libtorch_cuda.so not loaded");
        if tch::Cuda::device_count() == 0 {
            let err = result.unwrap_err().to_string();
            assert!(err.contains("--device cuda: libtorch finds no CUDA GPU"), "{err}");
        }
    }
}
