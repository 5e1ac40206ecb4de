// Package jepsen tests examples/raftkv the way Jepsen tests a database:
// real processes, real TCP, concurrent clients, and a nemesis that kills
// and partitions the nodes while the clients run; then the history of
// what the clients saw is checked for linearizability
// (github.com/anishathalye/porcupine).
//
// The set-up (Run):
//
//   - three raftkv processes, each on its own dwal directory, with short
//     raft timeouts and frequent snapshots, log compactions and segment
//     rotations, so that faults land in the middle of them;
//   - a TCP proxy (Link) on every directed link between two nodes' raft
//     transports: node i dials node j through link (i, j), because i's
//     --peers names the link's address for j. A link is up, drops its
//     connections (reset, refused), or blackholes them (accepted, nothing
//     forwarded until it heals, then delivered in order);
//   - clients (Client) that each run one operation at a time: GET and PUT
//     of a few keys (registers), every PUT writing a value of its own, and
//     now and then a PUT of a key of its own that is never written again;
//     they follow the nodes' 307 redirects themselves and record every
//     operation with its outcome: ok, failed (it had no effect: a 503, a
//     redirect to the end, a refused connection, any failed read), or
//     unknown (a PUT that may be committed: a timeout, a broken
//     connection, a 504);
//   - the nemesis (Nemesis), from the run's seed: SIGKILL of one node (the
//     leader half the time) or of two (no quorum until they are back),
//     restarted from their directories after a pause; partitions with
//     every cut link dropping or blackholing: one node isolated (the
//     leader half the time), a bridge (two nodes cut from each other, both
//     reaching the third), one node's RPCs lost one way.
//
// After the faults every link heals, every node is killed at once and
// started again, and every key is read back. The checks:
//
//   - the history (with the final reads) is linearizable for a register
//     per key (Model, Prepare: failed operations are dropped; an unknown
//     PUT may take effect at any time after its call);
//   - every acknowledged write-once PUT is read back after the restart of
//     every node, and none that failed is;
//   - no node exited by itself (raft panics, for instance, on a gap in
//     its log store).
//
// TestJepsenFindsStaleReads cuts a follower off while the leader
// acknowledges a write, then reads from the follower: with reads served
// unconfirmed by any node (raftkv --stale-reads) the check must fail, and
// on raftkv as it is pass.
package jepsen
