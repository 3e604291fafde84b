//! Huge pages for the big matrices prediction reads at random: each token's n-gram row is
//! most likely on a page the processor's address cache (TLB) does not hold — with 4 KB
//! pages an 800 MB matrix spans 200,000 of them. Linux backs a range with 2 MB pages where
//! a program asks (`MADV_HUGEPAGE`, as transparent huge pages are set by default) before
//! the memory is first touched. On DCLM's shape (dim 100, 2M buckets: 800 MB) the exact
//! predictor went from 42 to 55–61 MB/s; loading the model takes up to 2 s longer when the
//! kernel has to compact memory to find the huge pages.

/// Tables smaller than this stay on ordinary pages.
const MIN_BYTES: usize = 8 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// Asks for huge pages under the spare capacity of `v` (call it on a new
/// `Vec::with_capacity` before filling it). Only a hint: where the system has none, or
/// on other systems, nothing changes.
pub(crate) fn advise_huge<T>(v: &Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = (v.as_ptr() as usize).next_multiple_of(HUGE_PAGE);
        let end = (v.as_ptr() as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: `madvise` with MADV_HUGEPAGE changes no contents and no mapping, only
            // how the kernel backs the range, which lies inside `v`'s allocation.
            #[allow(unsafe_code)]
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
}
