//! fastText classifiers in pure Rust: reads fastText's binary model files (`.bin`, and the
//! product-quantized `.ftz` such as lid.176) and predicts labels with results bit-identical
//! to fastText 0.9's C++ (`FastText::predictLine`): the same tokens, character and word
//! n-gram hashes, the same float operations in the same order, the same order among equal
//! scores. It exists so that primer's `language` stage needs no C++ and runs several times
//! faster than fastText, mostly by avoiding its per-token strings and hash maps.
//!
//! [`Model::load`] reads a model (and refuses, with the file's name, anything that is not
//! a sound supervised fastText model); a [`Predictor`] holds one thread's scratch space and
//! answers [`predict`](Predictor::predict) (fastText's k best above a threshold),
//! [`best`](Predictor::best) (the top label, cheaply) and [`label`](Predictor::label) (one
//! label's probability: one root-to-leaf path for hierarchical softmax).
//!
//! Unlike fastText, a NaN in the hidden vector is not an error (fastText's dense `dotRow`
//! throws, which aborts a program that does not catch it); no such model is known.

mod cache;
mod dict;
mod error;
mod loss;
mod matrix;
mod model;
mod pages;
mod predict;
mod read;

pub use error::{Error, Result};
pub use loss::LossKind;
pub use model::{MAGIC, Model, VERSION};
pub use predict::{Prediction, Predictor};
