//! Engines: the policies that decide, per cycle, which pages are cold and what to do.
