//! End-to-end tests of the `primer` binary on real files.

mod it;
