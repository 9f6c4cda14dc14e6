//! Output rendering.
