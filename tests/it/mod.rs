mod bad_input;
mod demo;
mod resume;
mod sql;
mod tokenize;
mod util;
mod validate;
