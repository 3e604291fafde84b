mod bad_input;
mod dedupe;
mod demo;
mod filters;
mod resume;
mod sql;
mod util;
mod validate;
