//! `riffle-coral`: AWS's JSON front end ("coral", the Java framework behind
//! Kinesis, Firehose and the other JSON 1.0/1.1 services), as the services
//! share it: request members typed as AWS types them, with its own
//! `SerializationException` texts (`json`), and model constraints checked
//! and worded as its `ValidationException`s (`validate`).
//!
//! Each service keeps its own error type and converts
//! [`json::SerializationError`] and [`validate::ValidationError`] into it,
//! and lists the patterns of its own string shapes.
//!
//! **Architecture Invariant:** no request shape may say
//! `deny_unknown_fields`: AWS skips members it does not model, at every
//! depth, which is what lets a newer SDK talk to an older service.

pub mod json;
pub mod validate;
