//! The tasks, one module each (`up`, `down`, `status`, `verify`, `image`, `dev`, `test`): each reads top to
//! bottom, inputs, plan, print or carry out, report. May use every layer; nothing imports a task.

pub mod dev;
pub mod down;
pub mod image;
pub mod selftest;
pub mod status;
pub mod up;
pub mod verify;
