//! Credentials for hosts the build does not use.
