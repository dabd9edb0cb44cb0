//! Pure planning for smiless (DESIGN §6–§7): no network or process I/O; `now` and inputs in, a plan out.
