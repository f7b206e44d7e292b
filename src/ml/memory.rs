//! What a loaded model costs in memory, for `ml.memory_budget_bytes`.
//!
//! - glibc Linux (unless the `portable` feature is on): measured. The
//!   allocator's in-use bytes (`mallinfo2`) after the load and warm-up
//!   runs, less before.
//! - Everywhere else (macOS, FreeBSD, musl, Linux with `--features
//!   portable`): estimated. The bytes of the files beside the model file
//!   (`model.onnx`, its external data, a tokenizer), once per session: each
//!   ONNX Runtime session holds its own copy of the weights. What the
//!   warm-up run makes the runtime's arena grow is not counted.
//!
//! Rule (checked by `scripts/lint-platform`): the Linux-only call lives in
//! `memory/linux.rs`, declared only under its `cfg`.

use std::path::Path;

#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "portable")))]
mod linux;

/// A measurement taken before a model loads; [`Probe::cost`] finishes it.
#[derive(Debug)]
pub struct Probe {
    before: Option<u64>,
}

impl Probe {
    /// Starts a measurement: the allocator's count now, where there is one.
    pub fn start() -> Probe {
        Probe {
            before: allocated_bytes(),
        }
    }

    /// The memory taken since [`Probe::start`] by a model loaded from
    /// `file` into `sessions` sessions: measured where the allocator says
    /// (see the module docs), estimated from the files otherwise.
    pub fn cost(&self, file: &Path, sessions: usize) -> u64 {
        match (self.before, allocated_bytes()) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => estimate(file, sessions),
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "portable")))]
fn allocated_bytes() -> Option<u64> {
    Some(linux::allocated_bytes())
}

/// No allocator statistics off glibc: the cost is estimated.
#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "portable"))))]
fn allocated_bytes() -> Option<u64> {
    None
}

/// The bytes of the regular files in `file`'s directory, times `sessions`.
fn estimate(file: &Path, sessions: usize) -> u64 {
    let dir = file.parent().unwrap_or(Path::new("."));
    let files: u64 = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    files.saturating_mul(sessions as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_model_directory_once_per_session() {
        let dir = std::env::temp_dir().join(format!("conduit-memory-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("model.onnx"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.join("model.onnx.data"), vec![0u8; 300]).unwrap();
        // Other versions' files, in subdirectories, are not this model's.
        std::fs::write(dir.join("sub").join("model.onnx"), vec![0u8; 5000]).unwrap();
        let file = dir.join("model.onnx");
        assert_eq!(estimate(&file, 1), 1300);
        assert_eq!(estimate(&file, 3), 3900);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
