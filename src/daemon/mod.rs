//! The daemon: registry of projects, engines and tasks, and their scheduler threads.
