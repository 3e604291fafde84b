mod bad_input;
mod demo;
mod resume;
mod sql;
mod util;
mod validate;
