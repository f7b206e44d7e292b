//! Integration tests: one crate, one binary (STYLE.md §9).

mod support;

mod basics;
mod shutdown;
mod sse;
