//! One module per docker command (or family of commands).

pub mod build;
pub mod exec;
pub mod images;
pub mod info;
pub mod inspect;
pub mod lifecycle;
pub mod load;
pub mod login;
pub mod logs;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod run;
pub mod save;
pub mod tag;
pub mod version;
