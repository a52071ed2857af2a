//! Which segment, from which source, when.
