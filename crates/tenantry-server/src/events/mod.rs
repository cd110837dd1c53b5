//! What happened: the event catalogue (`GET /v1/event-types`). Events are
//! recorded by changes (see [`crate::change`]) in the same transaction as
//! the change, together with their outbox row (see [`crate::webhooks`]).

pub mod catalogue;
