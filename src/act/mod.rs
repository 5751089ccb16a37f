//! Actuators: take pages out of DRAM (swap them out, or migrate them to another node).
