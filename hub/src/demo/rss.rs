//! Peak resident memory (VmHWM) of this process or of a child, from
//! `/proc/PID/status`, for `hub bench`. Linux only: elsewhere the figures
//! read as unknown.

/// VmHWM of `/proc/<pid>/status` (`self` for this process), in KiB.
pub fn peak_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// Resets this process's VmHWM to its current RSS (`5` to clear_refs), so
/// the next reading covers only what runs after: the ceiling loop before a
/// scenario does not count. Best effort; a failed reset leaves a high mark.
pub fn reset_own_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `123.4 MiB`, or `unknown`.
pub fn format_mib(kib: Option<u64>) -> String {
    match kib {
        Some(k) => format!("{:.1} MiB", k as f64 / 1024.0),
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_peak() {
        let before = peak_kib("self").expect("VmHWM on Linux");
        assert!(before > 0);
        // 64 MiB touched raises the high-water mark by about as much.
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let after = peak_kib("self").unwrap();
        assert!(after >= before + 60 * 1024, "{before} -> {after}");
    }

    #[test]
    fn formats_mib() {
        assert_eq!(format_mib(Some(2048)), "2.0 MiB");
        assert_eq!(format_mib(None), "unknown");
    }
}
