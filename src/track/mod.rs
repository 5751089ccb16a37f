//! Access tracking: how often a process touches each of its pages, per kernel backend.
