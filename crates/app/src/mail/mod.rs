//! Email, the protocol's medium: what each step sends ([`messages`]), how it reads
//! ([`render`]), and the outbox worker that delivers it through SMTP ([`worker`]).

pub mod imap;
pub mod inbound;
pub mod messages;
pub mod render;
pub mod worker;

pub use messages::messages_for;
