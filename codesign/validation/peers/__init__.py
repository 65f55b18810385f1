"""Peer tools (SCALE-Sim, ZigZag, Stream): translation of our layers and hardware, runners, and their checked-in outputs."""
