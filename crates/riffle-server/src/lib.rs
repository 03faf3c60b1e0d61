//! `riffle-server`: the network edge (filled in by the server work).
