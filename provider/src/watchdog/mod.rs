//! `smiless watchdog`: a function replica's HTTP front, configured like the OpenFaaS watchdogs.
