//! The local platform, in one test binary: the emulators take the template's resources, the
//! local runner drives handlers as Lambda's event source mapping does, and the whole system
//! comes up and stops.

mod emulators;
mod runner;
mod system;
