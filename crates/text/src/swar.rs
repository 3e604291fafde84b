//! Byte tests eight bytes at a time in a `u64` ("SIMD within a register"): each byte's
//! result is its high bit. The scanners of [`crate::words`] and the filters' word classes
//! use them to find the end of a run without a branch per byte.

/// The high bit of every byte.
pub const HIGH: u64 = 0x8080_8080_8080_8080;

/// `b` in every byte.
#[inline(always)]
pub const fn splat(b: u8) -> u64 {
    b as u64 * 0x0101_0101_0101_0101
}

/// The eight bytes of `b` at `i` (little-endian: byte `i` is the lowest), if there are eight.
#[inline(always)]
pub fn load(b: &[u8], i: usize) -> Option<u64> {
    b.get(i..i + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

/// For `v` whose bytes are all below 0x80: the high bit of each byte greater than `m`
/// (`y + (0x7F − m)` reaches 0x80 exactly when `y > m`, and no byte carries into the next).
#[inline(always)]
pub const fn gt(v: u64, m: u8) -> u64 {
    v.wrapping_add(splat(0x7F - m)) & HIGH
}

/// For `v` whose bytes are all below 0x80: the high bit of each byte in `lo..=hi`.
#[inline(always)]
pub const fn in_range(v: u64, lo: u8, hi: u8) -> u64 {
    let above = if lo == 0 { HIGH } else { gt(v, lo - 1) };
    above & !gt(v, hi)
}

/// The high bit of each byte of `x` equal to `b`; exact for the lowest such byte (a borrow
/// can only flag bytes above a true one), which is all `trailing_zeros` reads.
#[inline(always)]
pub const fn eq_lowest(x: u64, b: u8) -> u64 {
    let v = x ^ splat(b);
    v.wrapping_sub(splat(1)) & !v & HIGH
}

/// The high bits of the first `n` bytes (all eight for `n >= 8`).
#[inline(always)]
pub const fn first_bytes(n: usize) -> u64 {
    if n >= 8 {
        HIGH
    } else {
        HIGH & ((1u64 << (8 * n)) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tests_match_scalar_ones() {
        for v in 0..=255u8 {
            for at in 0..8 {
                let mut b = [b'a'; 8];
                b[at] = v;
                let x = u64::from_le_bytes(b);
                let bit = 0x80u64 << (8 * at);
                if v < 0x80 {
                    let y = x & !HIGH;
                    assert_eq!(gt(y, 0x40) & bit != 0, v > 0x40, "{v}");
                    assert_eq!(
                        in_range(y, 0x09, 0x0D) & bit != 0,
                        (0x09..=0x0D).contains(&v)
                    );
                    assert_eq!(in_range(y, 0, 0x1F) & bit != 0, v <= 0x1F);
                }
                let first = eq_lowest(x, 0xC2).trailing_zeros() / 8;
                let want = b.iter().position(|&c| c == 0xC2).unwrap_or(8) as u32;
                assert_eq!(first, want, "{v} at {at}");
            }
        }
        assert_eq!(first_bytes(3), 0x0080_8080);
        assert_eq!(first_bytes(9), HIGH);
        assert_eq!(
            load(b"abcdefgh!", 1),
            Some(u64::from_le_bytes(*b"bcdefgh!"))
        );
        assert_eq!(load(b"abcdefgh", 1), None);
    }
}
