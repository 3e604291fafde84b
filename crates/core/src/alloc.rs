//! Process-wide memory-allocator settings for programs that stream documents.

/// Keeps glibc's malloc from hoarding freed document buffers. By default glibc raises its
/// mmap threshold up to 32 MiB as large blocks are freed, after which document-sized
/// buffers come from the heap and fragment it: peak RSS then grew with the input size
/// (bench/read_sql_write.sh: 306 → 428 → 551 MiB for 100 → 335 → 670 MB). A fixed
/// threshold returns such buffers to the system and keeps RSS flat. It is 4 MiB: at 1 MiB a
/// record batch's text buffers were mapped and faulted in afresh for every batch, and the
/// `language` and `filter` stages run 6% and 3% faster and read → sql → write 8–14% with
/// 4 MiB, for about 27 MiB more peak RSS that does not grow with the input (two runs each:
/// 179/216–221/241–244 → 205–207/247/269–271 MiB).
///
/// Fixing that threshold also fixes glibc's trim threshold at its 128 KiB default: every
/// free that left more than that at the top of a heap gave the memory back (`brk`,
/// `madvise`), and the next document's buffers faulted it in again, page by page. Keeping
/// up to 16 MiB per heap stops that churn: the filter chain's bench runs 9% faster (page
/// faults were 12% of the word splitter's time there), the `language` and `filter` stages
/// 7% and 4%, read → sql → write 10% (measured with the 1 MiB mmap threshold), for 15–25
/// MiB more peak RSS, still flat in the input size.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() {
    // SAFETY: mallopt only changes malloc's parameters; call it before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
    }
}

/// Does nothing off glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}
