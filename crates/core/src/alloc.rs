//! Process-wide memory-allocator settings for programs that stream documents.

/// Keeps glibc's malloc from hoarding freed document buffers. By default glibc raises its
/// mmap threshold up to 32 MiB as large blocks are freed, after which document-sized
/// buffers come from the heap and fragment it: peak RSS then grew with the input size
/// (bench/read_sql_write.sh: 306 → 428 → 551 MiB for 100 → 335 → 670 MB). A fixed 1 MiB
/// threshold returns such buffers to the system and keeps RSS flat.
///
/// Fixing that threshold also fixes glibc's trim threshold at its 128 KiB default: every
/// free that left more than that at the top of a heap gave the memory back (`brk`,
/// `madvise`), and the next document's buffers faulted it in again, page by page. Keeping
/// up to 16 MiB per heap stops that churn: the filter chain's bench runs 9% faster (page
/// faults were 12% of the word splitter's time there), the `language` and `filter` stages
/// 7% and 4%, read → sql → write 10%, for 15–25 MiB more peak RSS
/// (bench/read_sql_write.sh: 151/188/205 → 167/206/230 MiB, still flat in the input size).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() {
    // SAFETY: mallopt only changes malloc's parameters; call it before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

/// Does nothing off glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}
