//! Network tests.
