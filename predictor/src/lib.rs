//! Invocation forecasting for smiless (DESIGN §8–§9): series in, `Forecast` out; no network or process I/O.
