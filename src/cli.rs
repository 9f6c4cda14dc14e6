//! clap types.
