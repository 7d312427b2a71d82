//! rawnic client library.
