//! Placeholder: filled in by the markup work.
