//! Manifest loading.
